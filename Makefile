# ATUM DESK — developer commands. The logic lives in deploy/local/*.sh.
#
#   make build   build bin/atumdesk
#   make run     start the local stack and atumdesk (http://127.0.0.1:8080), seed demo data once
#   make stop    stop atumdesk, the local stack and the test servers (mail, Ollama, nginx)
#   make test    stack, mail servers, Ollama and nginx up, gofmt check, go vet, go test -race against them, then the web app's tests
#   make mail-up / mail-down   the local Dovecot + Postfix test servers (deploy/local/mail.sh)
#   make nginx-up / nginx-down nginx from Debian in front of `make run` on 127.0.0.1:18080 (deploy/local/nginx.sh)
#   make lint    gofmt check, go vet, staticcheck
#   make frontend        npm ci (when the lockfile changed) and build the web app into frontend/dist
#   make frontend-test   typecheck, Vitest, build (make test runs it, then the Playwright e2e suite)
#   make e2e             Playwright in Debian's Chromium against bin/atumdesk (frontend/e2e/run.sh)

GO ?= go
# Go's official install location, for shells (and CI) that lack it on PATH.
export PATH := $(PATH):/usr/local/go/bin

STACK := bash deploy/local/stack.sh
# A real Ollama server for the AI provider's tests, built once per machine (cached).
OLLAMA := bash deploy/local/ollama.sh
RUN := bash deploy/local/run.sh
MAIL := bash deploy/local/mail.sh
# nginx running deploy/nginx/atumdesk.conf on loopback (the scale-out test starts its own).
NGINX := bash deploy/local/nginx.sh
# `staticcheck@2026.1` is not a module version; v0.8.2 is staticcheck 2026.2.2, the
# newest release on the proxy, built for Go 1.26.
STATICCHECK := $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Go files to format-check: everything outside data/, .git/, node_modules/ and testdata/.
GOFILES_CMD := find . \( -path ./data -o -path ./.git -o -name node_modules -o -name testdata \) -prune -o -name '*.go' -print0

.PHONY: frontend frontend-test e2e
.PHONY: build run stop test lint fmt fmt-check vet staticcheck ollama-up stack-up stack-down stack-status mail-up mail-down nginx-install nginx-up nginx-down clean

build:
	$(GO) build -o bin/atumdesk ./cmd/atumdesk

run: build
	$(RUN) start

stop:
	$(RUN) stop
	$(NGINX) down
	$(MAIL) down
	$(OLLAMA) down
	$(STACK) down

test: stack-up mail-up ollama-up nginx-install fmt-check vet frontend-test
	eval "$$($(STACK) env)" && eval "$$($(MAIL) env)" && eval "$$($(OLLAMA) env)" && $(GO) test -race -p 2 -count=1 -timeout 20m ./...
	$(MAKE) e2e

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

ollama-up:
	$(OLLAMA) up

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

# nginx from Debian (installed when missing): `make test` needs the binary;
# nginx-up fronts `make run` (http://127.0.0.1:18080).
nginx-install:
	$(NGINX) install

nginx-up:
	$(NGINX) up

nginx-down:
	$(NGINX) down

clean:
	rm -rf bin/

# The web app. frontend/dist is committed (go build needs no Node); these
# rebuild it from the sources. `npm ci` runs only when the lockfile changed.
frontend/node_modules/.package-lock.json: frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund

frontend: frontend/node_modules/.package-lock.json
	cd frontend && npm run build

frontend-test: frontend/node_modules/.package-lock.json
	cd frontend && npx vitest run && npm run build
	@test -z "$$(git status --porcelain -- frontend/dist 2>/dev/null)" || echo "note: frontend/dist changed; commit it with its sources"

e2e: build stack-up
	bash frontend/e2e/run.sh
