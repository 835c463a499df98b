# ATUM DESK — developer commands. The logic lives in deploy/local/*.sh.
#
#   make build   build bin/atumdesk
#   make run     start the local stack and atumdesk (http://127.0.0.1:8080), seed demo data once
#   make stop    stop atumdesk and the local stack
#   make test    stack and mail servers up, gofmt check, go vet, go test -race against them
#   make mail-up / mail-down   the local Dovecot + Postfix test servers (deploy/local/mail.sh)
#   make lint    gofmt check, go vet, staticcheck

GO ?= go
# Go's official install location, for shells (and CI) that lack it on PATH.
export PATH := $(PATH):/usr/local/go/bin

STACK := bash deploy/local/stack.sh
RUN := bash deploy/local/run.sh
MAIL := bash deploy/local/mail.sh
# `staticcheck@2026.1` is not a module version; v0.8.2 is staticcheck 2026.2.2, the
# newest release on the proxy, built for Go 1.26.
STATICCHECK := $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Go files to format-check: everything outside data/, .git/, node_modules/ and testdata/.
GOFILES_CMD := find . \( -path ./data -o -path ./.git -o -name node_modules -o -name testdata \) -prune -o -name '*.go' -print0

.PHONY: build run stop test lint fmt fmt-check vet staticcheck stack-up stack-down stack-status mail-up mail-down clean

build:
	$(GO) build -o bin/atumdesk ./cmd/atumdesk

run: build
	$(RUN) start

stop:
	$(RUN) stop
	$(STACK) down

test: stack-up mail-up fmt-check vet
	eval "$$($(STACK) env)" && eval "$$($(MAIL) env)" && $(GO) test -race -p 2 -count=1 -timeout 20m ./...

lint: fmt-check vet staticcheck

fmt:
	$(GOFILES_CMD) | xargs -0 -r gofmt -w

fmt-check:
	@out="$$($(GOFILES_CMD) | xargs -0 -r gofmt -l)"; \
	if [ -n "$$out" ]; then echo "gofmt: these files need formatting (make fmt):"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

staticcheck:
	$(STATICCHECK) ./...

stack-up:
	$(STACK) up

stack-down:
	$(STACK) down

stack-status:
	$(STACK) status

# Dovecot (IMAP, IDLE) and Postfix (SMTP) on loopback for the e-mail tests;
# they stay up after `make test` like the stack (`make mail-down` stops them).
mail-up:
	$(MAIL) up

mail-down:
	$(MAIL) down

clean:
	rm -rf bin/
