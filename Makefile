# d365-cdc-handler: a C custom handler for Azure Functions that keeps Redis
# and SQL current from Dynamics 365 / Dataverse change messages.
#
#   make            build the handler and assemble build/app (the script root)
#   make check      the whole test suite (installs missing packages as root)
#   make asan       the suite under AddressSanitizer + UBSan
#   make demo       the main job: the pipeline on a private local Redis
#   make bench      the benchmark; writes docs/performance.md
#   make fuzz       libFuzzer over body handling + decoding + mapping
#   make zip        the deployable zip (built in a Debian 11 root: glibc 2.31)
#   make help       every target

BUILD ?= build
CC ?= cc
SAN ?=
FUZZ_SECONDS ?= 60
# the handler links only what it uses (libcurl: Entra ID tokens, handler/identity/)
HANDLER_PKGS := libmicrohttpd libcjson hiredis openssl odbc libcurl
PKGS := $(HANDLER_PKGS)

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
HANDLER_LIBS := $(shell pkg-config --libs $(HANDLER_PKGS) 2>/dev/null) -lm

WARN := -Wall -Wextra -Werror -Wpedantic -Wstrict-prototypes -Wwrite-strings -Wshadow \
        -Wmissing-prototypes -Wformat=2 -Wno-format-truncation -Wno-missing-field-initializers -Wvla
# clang does not know some GCC warning options (-Wno-format-truncation)
ifneq ($(findstring clang,$(shell $(CC) --version 2>/dev/null | head -1)),)
  WARN += -Wno-unknown-warning-option
endif
CFLAGS ?= -O2 -g
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE -Ihandler $(WARN) $(CFLAGS) $(PKG_CFLAGS) -MMD -MP -pthread
ALL_LDFLAGS := $(LDFLAGS) -pthread
LIBS := $(PKG_LIBS) -lm

ifeq ($(SAN),1)
  ALL_CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
  ALL_LDFLAGS += -fsanitize=address,undefined
endif

ifeq ($(V),1)
  Q :=
  QCC =
else
  Q := @
  QCC = @printf '  CC      %s\n' $<;
endif

# handler/ is grouped by concern (docs/architecture.md); includes are relative to handler/
HANDLER_SRCS := $(filter-out handler/main.c,$(wildcard handler/*.c handler/*/*.c))
HANDLER_OBJS := $(HANDLER_SRCS:%.c=$(BUILD)/obj/%.o)
MAIN_OBJ := $(BUILD)/obj/handler/main.o
LIB := $(BUILD)/libhandler.a
BIN := $(BUILD)/handler

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

# C programs that need a server (Redis, PostgreSQL); run by tests/e2e/*.sh
ITEST_SRCS := $(wildcard tests/itest/itest_*.c)
ITEST_BINS := $(ITEST_SRCS:tests/itest/%.c=$(BUILD)/itest/%)

HOSTEMU_SRCS := $(wildcard tests/hostemu/*.c)
HOSTEMU_OBJS := $(HOSTEMU_SRCS:%.c=$(BUILD)/obj/%.o)
HOSTEMU := $(BUILD)/hostemu

TOOL_SRCS := $(wildcard tests/tools/*.c)
TOOL_BINS := $(TOOL_SRCS:tests/tools/%.c=$(BUILD)/tools/%)

FUNCTIONS := $(patsubst function_app/%/function.json,%,$(wildcard function_app/*/function.json))
APP := $(BUILD)/app

.PHONY: all deps handler app zip run demo check unit e2e asan cluster-check fuzz fuzz-build bench \
        lint kql format format-check clean help tools demo-after-deps check-after-deps \
        bench-after-deps fresh-check zip-check property property-after-deps

all: deps-check handler app tools

help:
	@sed -n '1,12p' Makefile | sed 's/^# \{0,1\}//'
	@echo 'Other targets: deps app run unit e2e cluster-check fuzz-build property lint kql format format-check clean fresh-check zip-check'
	@echo 'Variables: BUILD=dir SAN=1 (sanitizers) CC=clang V=1 FUZZ_SECONDS=n'

# Install missing Debian packages (as root) or print the command to do it.
deps:
	$(Q)sh tests/scripts/deps.sh install

deps-check:
	$(Q)sh tests/scripts/deps.sh check-build

handler: $(BIN)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(QCC)$(CC) $(ALL_CFLAGS) -c -o $@ $<

# `handler --version` and the start-up log name the commit (git describe)
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo unknown)
$(BUILD)/obj/handler/common/platform.o: ALL_CFLAGS += -DD365CDC_VERSION='"$(VERSION)"'

$(LIB): $(HANDLER_OBJS)
	$(Q)rm -f $@
	$(Q)ar rcs $@ $^

$(BIN): $(MAIN_OBJ) $(LIB)
	@printf '  LD      %s\n' $@
	$(Q)$(CC) $(ALL_LDFLAGS) -Wl,--disable-new-dtags,-rpath,'$$ORIGIN/lib' -o $@ $(MAIN_OBJ) $(LIB) $(HANDLER_LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(LIB) tests/unit/check.h
	@mkdir -p $(dir $@)
	@printf '  CC      %s\n' $<
	$(Q)$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(LIB) $(LIBS)

$(BUILD)/itest/%: tests/itest/%.c $(LIB) tests/unit/check.h
	@mkdir -p $(dir $@)
	@printf '  CC      %s\n' $<
	$(Q)$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(LIB) $(LIBS)

$(HOSTEMU): $(HOSTEMU_OBJS) $(LIB)
	@printf '  LD      %s\n' $@
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $(HOSTEMU_OBJS) $(LIB) $(LIBS)

$(BUILD)/tools/%: tests/tools/%.c $(LIB)
	@mkdir -p $(dir $@)
	@printf '  CC      %s\n' $<
	$(Q)$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(LIB) $(LIBS)

tools: $(HOSTEMU) $(TOOL_BINS) $(ITEST_BINS)

# The script root the Functions host runs: host.json, one folder per
# function, the handler binary. local.settings.json is copied for `func start`
# but never into the zip.
app: $(BIN)
	$(Q)rm -rf $(APP) && mkdir -p $(APP)
	$(Q)cp host.json local.settings.json $(APP)/
	$(Q)for f in $(FUNCTIONS); do mkdir -p $(APP)/$$f && cp function_app/$$f/function.json $(APP)/$$f/; done
	$(Q)if [ -f function_app/mapping.json ]; then cp function_app/mapping.json $(APP)/; fi
	$(Q)install -m 0755 $(BIN) $(APP)/handler
	@echo "  APP     $(APP) ($(FUNCTIONS))"

# The zip for every Functions v4 Linux image (glibc >= GLIBC_FLOOR, 2.31): built
# in a Debian 11 root unless this machine's glibc is that old (tests/scripts/zip.sh)
zip:
	$(Q)sh tests/scripts/zip.sh $(abspath $(BUILD))

# The slow checks, each its own .ci/run step (root, debootstrap, a few minutes):
# the README's two commands on a fresh Debian 12 root; the suite on Debian 11
# and the zip started from fresh Debian 11 and 12 roots
fresh-check:
	$(Q)sh tests/scripts/fresh_check.sh $(abspath $(BUILD))

zip-check:
	$(Q)sh tests/scripts/zip_check.sh $(abspath $(BUILD))

run: all
	$(Q)sh tests/scripts/run.sh $(BUILD)

# demo, check and bench install missing packages first, then run the rest in
# a new make: this Makefile asks pkg-config for the libraries' flags when it
# is read, so on a fresh machine it must be read again after `deps` installed
# the -dev packages (tests/scripts/fresh_check.sh proves it).
demo check bench property: deps
	$(Q)$(MAKE) --no-print-directory $@-after-deps

demo-after-deps: all
	$(Q)sh tests/scripts/demo.sh $(BUILD)

unit: $(UNIT_BINS)
	$(Q)sh tests/run.sh unit $(BUILD)

e2e: all
	$(Q)sh tests/run.sh e2e $(BUILD)

check-after-deps: all $(UNIT_BINS)
	$(Q)sh tests/run.sh all $(BUILD)

asan:
	$(Q)$(MAKE) --no-print-directory BUILD=$(BUILD)/asan SAN=1 CFLAGS='-O1 -g' check

# the slow Redis Cluster tests (tests/cluster/: resharding, failover, the
# delivery orders on 3 primaries + 3 replicas); CLUSTER_SAN=1: under ASan+UBSan
cluster-check: deps all $(UNIT_BINS)
ifeq ($(CLUSTER_SAN),1)
	$(Q)$(MAKE) --no-print-directory BUILD=$(BUILD)/asan SAN=1 CFLAGS='-O1 -g' all
	$(Q)sh tests/run.sh cluster $(BUILD)/asan
else
	$(Q)sh tests/run.sh cluster $(BUILD)
endif

FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
fuzz-build:
	$(Q)$(MAKE) --no-print-directory BUILD=$(BUILD)/fuzz CC=clang \
	  CFLAGS='-O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all' \
	  $(BUILD)/fuzz/libhandler.a
	$(Q)for t in $(FUZZ_TARGETS); do \
	  clang -std=c11 -D_GNU_SOURCE -Ihandler -O1 -g -fsanitize=fuzzer,address,undefined \
	    -fno-sanitize-recover=all $(PKG_CFLAGS) \
	    -o $(BUILD)/fuzz/$$t tests/fuzz/$$t.c $(BUILD)/fuzz/libhandler.a $(LIBS) -pthread || exit 1; \
	done

fuzz: fuzz-build
	$(Q)sh tests/scripts/fuzz.sh $(BUILD)/fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# the ordering property test over 30,000 histories (make check runs 3000)
property-after-deps: all
	$(Q)PROPERTY_HISTORIES=$${PROPERTY_HISTORIES:-30000} sh tests/run.sh e2e $(BUILD) pipeline_property

bench-after-deps: all
	$(Q)sh tests/scripts/bench.sh $(BUILD)

lint:
	$(Q)sh tests/scripts/lint.sh

# The KQL queries of docs/operations.md and docs/workbook.json, checked with
# Microsoft's Kusto language service (npm, pinned in tests/kql/package-lock.json).
KQL_DIR = $(BUILD)/kql
kql:
	$(Q)command -v node >/dev/null && command -v npm >/dev/null || \
	  { echo "make kql needs node and npm: apt-get install -y nodejs npm" >&2; exit 1; }
	$(Q)mkdir -p $(KQL_DIR) && cp tests/kql/package.json tests/kql/package-lock.json $(KQL_DIR)/
	$(Q)cd $(KQL_DIR) && npm ci --no-audit --no-fund --loglevel=error >/dev/null
	$(Q)NODE_PATH=$(abspath $(KQL_DIR))/node_modules node tests/kql/check.js docs/operations.md docs/workbook.json

FORMAT_FILES = handler/*.[ch] handler/*/*.[ch] tests/unit/*.[ch] $(wildcard tests/hostemu/*.[ch] tests/fuzz/*.c tests/tools/*.c tests/itest/*.c)
format:
	$(Q)clang-format -i $(FORMAT_FILES)

format-check:
	$(Q)clang-format --dry-run --Werror $(FORMAT_FILES)

# a chroot left mounted (a killed zip build) is unmounted before anything is deleted
clean:
	$(Q)if [ -d $(BUILD)/debian11 ]; then sh tests/scripts/debroot.sh remove $(BUILD)/debian11; fi
	rm -rf $(BUILD)

-include $(HANDLER_OBJS:.o=.d) $(MAIN_OBJ:.o=.d) $(HOSTEMU_OBJS:.o=.d)
