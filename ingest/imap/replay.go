package imap

import (
	"context"
	"errors"
	"time"
)

// replayLoop hands quarantined messages an admin asked to replay (status
// 'replay') to the sink again, from the raw store, for the mailboxes this
// process holds. No IMAP is involved: the message was flagged or moved when
// it was quarantined.
func (p *Poller) replayLoop(ctx context.Context) {
	t := time.NewTicker(p.cfg.ReplayInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		items, err := p.st.replays(ctx, 100)
		if err != nil {
			if ctx.Err() == nil {
				p.log.Warn("imap: listing replays failed", "err", err)
			}
			continue
		}
		for _, q := range items {
			if ctx.Err() != nil {
				return
			}
			p.replay(ctx, q)
		}
	}
}

// replay hands one quarantined message to the sink once; on failure it goes
// back to quarantine with the new error.
func (p *Poller) replay(ctx context.Context, q replayItem) {
	log := p.log.With("mailbox_id", q.MailboxID, "quarantine_id", q.ID)
	msg := &Message{MailboxID: q.MailboxID, OrgID: q.OrgID, Address: q.Address, Folder: q.Folder,
		UIDValidity: uint32(q.UIDValidity), UID: uint32(q.UID), Replay: true}
	if q.MessageID != nil {
		msg.MessageID = *q.MessageID
	}
	var err error
	if q.RawSHA256 == nil {
		err = errors.New("the raw message was not stored (larger than the limit); it cannot be replayed")
	} else {
		msg.SHA256 = *q.RawSHA256
		msg.Raw, msg.RawPath, err = p.raw.Get(msg.SHA256)
	}
	if err == nil {
		err = p.callSink(ctx, msg)
		if ctx.Err() != nil {
			return // stopping: the request stays for the next holder
		}
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err != nil {
		p.m.replays.WithLabelValues("failed").Inc()
		log.Warn("imap: replay failed; back in quarantine", "err", err)
		if err := p.st.replayFailed(rctx, q.ID, err.Error()); err != nil {
			log.Warn("imap: recording the failed replay failed", "err", err)
		}
		return
	}
	if err := p.st.replayed(rctx, q, msg); err != nil {
		log.Warn("imap: recording the replay failed; it will be handed on again", "err", err)
		return
	}
	p.m.replays.WithLabelValues("replayed").Inc()
	log.Info("imap: quarantined message replayed")
}
