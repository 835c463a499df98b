package mail

import (
	"regexp"
	"strings"
	"unicode"
)

// ReplyMarker is the line outbound notifications put above the quoted
// conversation; everything from it down is history. Templates must use this
// constant so ingest recognises it.
const ReplyMarker = "##- Please type your reply above this line -##"

// Line patterns of quoted history. Languages: en, de, fr, es, plus nl, it,
// pt, sv where the shape is the same.
var (
	// "-----Original Message-----" and its translations (Outlook, Lotus).
	originalMessage = regexp.MustCompile(`(?i)^\s*-{2,}\s*(original message|ursprüngliche nachricht|originalnachricht|message d'origine|mensaje original|oorspronkelijk bericht|messaggio originale|mensagem original|originalmeddelande)\s*-{2,}\s*$`)
	// The first line of Outlook's header block ("From: ...", "*From:* ...").
	outlookFrom = regexp.MustCompile(`(?i)^\s*\*?(from|von|de|van|da|från)\s*:\*?\s*\S`)
	// The field lines that must follow it within a few lines.
	outlookSent    = regexp.MustCompile(`(?i)^\s*\*?(sent|date|gesendet|datum|envoyé|date d'envoi|enviado(?: el)?|fecha|verzonden|inviato|data|skickat)\s*:`)
	outlookSubject = regexp.MustCompile(`(?i)^\s*\*?(to|subject|an|betreff|à|a|objet|para|asunto|aan|onderwerp|oggetto|assunto|till|ämne)\s*:`)
	underscores    = regexp.MustCompile(`^\s*_{10,}\s*$`)
	// "On <date>, <name> wrote:" and its translations, possibly wrapped
	// over up to three lines (Gmail wraps long ones).
	attribution = regexp.MustCompile(`(?i)^\s*(on|am|le|el|op|il|em|den|på)\s.{3,}?\s(wrote|schrieb|a écrit|escribió|escribio|schreef|ha scritto|escreveu|skrev)(\s[^:]{0,120})?\s*:\s*$`)
	// "<name> wrote:" (Thunderbird without a date, older clients); only
	// trusted when quoted lines follow.
	shortAttribution = regexp.MustCompile(`(?i)^\s*\S.{0,150}\s(wrote|schrieb|schrieb am .{3,60}|a écrit|escribió|schreef|ha scritto|escreveu|skrev)\s*:\s*$`)
	// Signature delimiter (RFC 3676 §4.3 "-- "; many clients drop the space).
	sigDelimiter = regexp.MustCompile(`^--\s*$`)
	// Lines that introduce a forwarded message: what follows is content,
	// not history, so no header block under them is cut.
	forwardMarker = regexp.MustCompile(`(?i)^\s*(-{2,}\s*(forwarded message|weitergeleitete nachricht|message transféré|mensaje reenviado|doorgestuurd bericht|messaggio inoltrato|mensagem encaminhada)\s*-*|begin forwarded message:|anfang der weitergeleiteten nachricht:|début du message réexpédié :?|inicio del mensaje reenviado:)\s*$`)
	// Mobile clients' one-line signatures, when they end the text.
	mobileSignature = regexp.MustCompile(`(?i)^\s*(sent from my |sent from outlook|get outlook for |sent from mail for windows|von meinem .{1,40} gesendet|gesendet von meinem |envoyé de mon |enviado desde mi |verzonden met |inviato da )`)
)

// StripQuotes returns the new text of a plain-text reply: it cuts at our
// ReplyMarker, at "-----Original Message-----", at an Outlook header block
// and at an "On … wrote:" line with nothing quoted under it; drops quoted
// (">") blocks at the start and at the end with their attribution lines,
// keeping quotes between new text (inline answers); and removes the
// signature. The result may be empty when the message only quotes.
func StripQuotes(text string) string {
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	lines = lines[:historyStart(lines)]
	for i, l := range lines {
		lines[i] = plainSpaces(l)
	}

	quoted := make([]bool, len(lines))
	for i, l := range lines {
		quoted[i] = isQuoteLine(l)
	}
	// An attribution directly above a quote belongs to it.
	for i := range lines {
		if n := attributionAt(lines, i, true); n > 0 && quoteFollows(lines, i+n) {
			for j := i; j < i+n; j++ {
				quoted[j] = true
			}
		}
	}
	// Drop quote blocks (and blank lines) at both ends.
	start, end := 0, len(lines)
	for start < end && (quoted[start] || blank(lines[start])) {
		start++
	}
	for end > start && (quoted[end-1] || blank(lines[end-1])) {
		end--
	}
	// An attribution left at the end once its history was cut.
	for n := 1; n <= 3 && end-n >= start; n++ {
		if attributionAt(lines, end-n, true) == n {
			for end -= n; end > start && blank(lines[end-1]); end-- {
			}
			break
		}
	}
	return stripSignature(strings.Join(lines[start:end], "\n"))
}

// historyStart is the index of the first line of unquoted history (the end
// of the text when there is none).
func historyStart(lines []string) int {
	forwarded := false
	for i, l := range lines {
		l = plainSpaces(l)
		if forwardMarker.MatchString(l) {
			forwarded = true
		}
		switch {
		case forwarded:
			// Forwarded content is kept whole.
			continue
		case strings.Contains(l, ReplyMarker):
			return i
		case originalMessage.MatchString(l):
			return i
		case outlookFrom.MatchString(l) && outlookBlock(lines[i:]) && !forwardAbove(lines[:i]):
			// Outlook draws a line of underscores above the block.
			for i > 0 && (blank(lines[i-1]) || underscores.MatchString(lines[i-1])) {
				if underscores.MatchString(lines[i-1]) {
					return i - 1
				}
				i--
			}
			return i
		}
		if n := attributionAt(lines, i, false); n > 0 && !quoteFollows(lines, i+n) {
			return i
		}
	}
	return len(lines)
}

// outlookBlock reports a "From:" line followed, within four lines, by a
// date field and by a recipient or subject field.
func outlookBlock(lines []string) bool {
	sent, subj := false, false
	for _, l := range lines[1:min(len(lines), 6)] {
		l = plainSpaces(l)
		sent = sent || outlookSent.MatchString(l)
		subj = subj || outlookSubject.MatchString(l)
	}
	return sent && subj
}

// attributionAt returns how many lines (1..3) starting at i form an
// attribution line, or 0. loose also accepts "<name> wrote:".
func attributionAt(lines []string, i int, loose bool) int {
	if isQuoteLine(lines[i]) || blank(lines[i]) {
		return 0
	}
	joined := ""
	for n := 1; n <= 3 && i+n <= len(lines); n++ {
		l := lines[i+n-1]
		if n > 1 && (blank(l) || isQuoteLine(l)) {
			return 0
		}
		joined = strings.TrimSpace(joined + " " + strings.TrimSpace(plainSpaces(l)))
		if len(joined) > 400 {
			return 0
		}
		if !strings.HasSuffix(joined, ":") {
			continue // every attribution ends with a colon: skip the regexps
		}
		if attribution.MatchString(joined) || (loose && shortAttribution.MatchString(joined)) {
			return n
		}
	}
	return 0
}

// quoteFollows reports whether the next non-blank line from i is quoted.
func quoteFollows(lines []string, i int) bool {
	for ; i < len(lines); i++ {
		if !blank(lines[i]) {
			return isQuoteLine(lines[i])
		}
	}
	return false
}

// forwardAbove reports a forward marker as the last non-blank line.
func forwardAbove(lines []string) bool {
	for i := len(lines) - 1; i >= 0; i-- {
		if !blank(lines[i]) {
			return forwardMarker.MatchString(plainSpaces(lines[i]))
		}
	}
	return false
}

// plainSpaces turns no-break and other Unicode spaces into ASCII spaces and
// drops zero-width characters and BOMs, which clients sprinkle into
// attribution and header lines (Go's \s is ASCII only).
func plainSpaces(l string) string {
	if isASCII(l) {
		return l
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\u200b' || r == '\u200c' || r == '\u200d' || r == '\u2060' || r == '\ufeff':
			return -1
		case unicode.IsSpace(r):
			if r == '\n' || r == '\t' {
				return r
			}
			return ' '
		}
		return r
	}, l)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func isQuoteLine(l string) bool {
	return strings.HasPrefix(strings.TrimLeft(l, " \t"), ">")
}

func blank(l string) bool { return strings.TrimSpace(l) == "" }

// stripSignature cuts text at its first signature delimiter line and drops
// a trailing mobile-client signature line.
func stripSignature(text string) string {
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if sigDelimiter.MatchString(l) {
			lines = lines[:i]
			break
		}
	}
	end := len(lines)
	for end > 0 && blank(lines[end-1]) {
		end--
	}
	if end > 0 && mobileSignature.MatchString(lines[end-1]) {
		end--
	}
	return strings.TrimRight(strings.TrimLeft(strings.Join(lines[:end], "\n"), "\n"), " \t\n")
}
