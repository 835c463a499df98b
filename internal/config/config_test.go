package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDefaults(t *testing.T) {
	c, err := Load(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "127.0.0.1:8080" || !c.EmbeddedKafka() || c.AccessTokenTTL != 15*time.Minute || c.LoginMaxFails != 5 {
		t.Fatalf("unexpected defaults: %+v", c)
	}
}

func TestBadValuesNameTheVariable(t *testing.T) {
	cases := map[string]string{
		"ATUMDESK_HTTP_ADDR":          "8080",
		"ATUMDESK_DATABASE_URL":       "mysql://x",
		"ATUMDESK_LOG_LEVEL":          "loud",
		"ATUMDESK_JWT_SECRET":         "short",
		"ATUMDESK_KAFKA_BROKERS":      "kafka-without-port",
		"ATUMDESK_ACCESS_TOKEN_TTL":   "1s",
		"ATUMDESK_TRUSTED_PROXIES":    "10.0.0.0/99",
		"ATUMDESK_DATABASE_MAX_CONNS": "many",
		"ATUMDESK_SMTP_SECURITY":      "ssl",
		"ATUMDESK_SMTP_PORT":          "0",
		"ATUMDESK_MAIL_FROM":          "not an address",
		"ATUMDESK_MAIL_ACK_LIMIT":     "-1",
	}
	for name, val := range cases {
		_, err := Load(map[string]string{name: val})
		if err == nil {
			t.Errorf("%s=%q accepted", name, val)
			continue
		}
		if !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%q: error %q does not name the variable", name, val, err)
		}
	}
}

// Plain-text SMTP only to this machine, and never with a password.
func TestSMTPNoneOnlyOnLoopback(t *testing.T) {
	for env, ok := range map[[3]string]bool{
		{"127.0.0.1", "none", ""}:                true,
		{"localhost", "none", ""}:                true,
		{"smtp.example.com", "none", ""}:         false,
		{"127.0.0.1", "none", "user"}:            false,
		{"smtp.example.com", "starttls", "user"}: true,
	} {
		_, err := Load(map[string]string{"ATUMDESK_SMTP_HOST": env[0], "ATUMDESK_SMTP_SECURITY": env[1], "ATUMDESK_SMTP_USERNAME": env[2]})
		if (err == nil) != ok {
			t.Errorf("%v: err = %v", env, err)
		}
	}
}

func TestTrustedProxiesParsed(t *testing.T) {
	c, err := Load(map[string]string{"ATUMDESK_TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1,::1", "ATUMDESK_KAFKA_BROKERS": "a:9092,b:9092"})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.TrustedProxyPrefixes) != 3 || c.EmbeddedKafka() {
		t.Fatalf("%+v", c)
	}
}

// TestREADMEDocumentsEveryVariable keeps the README's configuration table
// true: every variable appears with its default.
func TestREADMEDocumentsEveryVariable(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	ty := reflect.TypeFor[Config]()
	for i := range ty.NumField() {
		f := ty.Field(i)
		name := f.Tag.Get("env")
		if name == "" || name == "-" {
			continue
		}
		row := ""
		for _, line := range strings.Split(readme, "\n") {
			if strings.HasPrefix(line, "| `"+Prefix+name+"`") {
				row = line
			}
		}
		if row == "" {
			t.Errorf("README has no table row for %s%s", Prefix, name)
			continue
		}
		if def := f.Tag.Get("envDefault"); def != "" && !strings.Contains(row, "`"+def+"`") {
			t.Errorf("README row for %s%s does not give the default `%s`", Prefix, name, def)
		}
	}
}
