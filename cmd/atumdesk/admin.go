package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/atumdesk/atumdesk/ingest/mail"
	"github.com/atumdesk/atumdesk/internal/config"
	"github.com/atumdesk/atumdesk/internal/database"
	"github.com/atumdesk/atumdesk/internal/seed"
	"github.com/atumdesk/atumdesk/migrations"
)

func runMigrate(ctx context.Context, cfg *config.Config, args []string, out io.Writer) error {
	if len(args) != 1 || (args[0] != "up" && args[0] != "status") {
		return usageError{fmt.Errorf("want `migrate up` or `migrate status`")}
	}
	_, sqlDB, err := database.Open(ctx, cfg.DatabaseURL, 2)
	if err != nil {
		return err
	}
	defer sqlDB.Close()
	if args[0] == "up" {
		if err := migrations.Up(ctx, sqlDB); err != nil {
			return err
		}
	}
	st, err := migrations.Status(ctx, sqlDB)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tNAME\tAPPLIED")
	for _, s := range st {
		applied := "pending"
		if s.Applied {
			applied = s.AppliedAt.UTC().Format("2006-01-02 15:04:05Z")
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\n", s.Version, s.Name, applied)
	}
	return tw.Flush()
}

func runSeed(ctx context.Context, cfg *config.Config, args []string, out io.Writer) error {
	fs := newFlagSet("seed")
	demo := fs.Bool("demo", false, "create the demo organisations and users")
	password := fs.String("password", "", "password for every demo user (default: random for new users)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if !*demo {
		return usageError{fmt.Errorf("only `seed --demo` exists")}
	}
	db, sqlDB, err := database.Open(ctx, cfg.DatabaseURL, 2)
	if err != nil {
		return err
	}
	defer sqlDB.Close()
	if err := migrations.Up(ctx, sqlDB); err != nil {
		return err
	}
	logins, err := seed.Demo(ctx, db, *password)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ORG\tROLE\tE-MAIL\tPASSWORD")
	for _, l := range logins {
		pw := l.Password
		if pw == "" {
			pw = "(unchanged)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", l.Org, l.Role, l.Email, pw)
	}
	return tw.Flush()
}

// runMail is `atumdesk mail parse FILE.eml`: what ingest makes of a raw
// message, as JSON — the tool to see why a mail was quarantined.
func runMail(args []string, out io.Writer) error {
	if len(args) != 2 || args[0] != "parse" {
		return usageError{fmt.Errorf("want `mail parse FILE.eml`")}
	}
	raw, err := os.ReadFile(args[1])
	if err != nil {
		return usageError{err}
	}
	b, err := mail.Describe(raw)
	if err != nil {
		return err
	}
	_, err = out.Write(append(b, '\n'))
	return err
}
