package main

import (
	"context"
	"fmt"

	"github.com/atumdesk/atumdesk/ingest/imap"
	"github.com/atumdesk/atumdesk/internal/mailer"
	"github.com/atumdesk/atumdesk/internal/mailthread"
	"github.com/atumdesk/atumdesk/workers/notify"
)

// notifyConfig builds the notify stage's SMTP sender and token signer.
// Without ATUMDESK_SMTP_HOST nothing is sent: each notification is
// recorded as suppressed ("smtp not configured"), said once here.
func (e *env) notifyConfig(ctx context.Context) (notify.Config, error) {
	// Tokens are signed with the JWT secret, as inbound threading checks them.
	secret, err := e.jwtSecret(ctx)
	if err != nil {
		return notify.Config{}, err
	}
	signer := mailthread.NewSigner(secret)
	c := notify.Config{Signer: &signer, From: e.cfg.MailFrom, PublicURL: e.cfg.PublicURL, AckLimit: e.cfg.MailAckLimit}
	if c.AckLimit == 0 {
		c.AckLimit = -1 // ATUMDESK_MAIL_ACK_LIMIT=0: no acknowledgements
	}
	if e.cfg.SMTPHost == "" {
		e.log.Warn("notify: ATUMDESK_SMTP_HOST is empty: no e-mail is sent; notifications are recorded as suppressed (smtp not configured)")
		return c, nil
	}
	tlsCfg, err := imap.TLSConfig(e.cfg.SMTPCAFile)
	if err != nil {
		return notify.Config{}, fmt.Errorf("ATUMDESK_SMTP_CA_FILE: %w", err)
	}
	m, err := mailer.New(mailer.Config{Host: e.cfg.SMTPHost, Port: e.cfg.SMTPPort, Security: mailer.Security(e.cfg.SMTPSecurity),
		Username: e.cfg.SMTPUsername, Password: e.cfg.SMTPPassword, TLS: tlsCfg})
	if err != nil {
		return notify.Config{}, err
	}
	c.Mailer = m
	if e.cfg.MailFrom == "" {
		e.log.Warn("notify: ATUMDESK_MAIL_FROM is empty: organisations without an active mailbox get no mail")
	}
	e.log.Info("notify: sending e-mail through SMTP", "host", e.cfg.SMTPHost, "port", e.cfg.SMTPPort, "security", e.cfg.SMTPSecurity)
	return c, nil
}
