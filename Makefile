# phonehome: build, test, lint, sanitize, bench, run, install.
PREFIX  ?= /usr/local
DESTDIR ?=
CC      ?= cc
LUA     ?= lua5.4
BUILD   ?= build

PKGS     = lua5.4 libuv uuid
# read when a recipe runs, after the packages are installed
CMODDIR  = $(shell pkg-config --variable=INSTALL_CMOD lua5.4 2>/dev/null)
LMODDIR  = $(shell pkg-config --variable=INSTALL_LMOD lua5.4 2>/dev/null)
WARN     = -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
           -Wmissing-prototypes -Wwrite-strings
OPT     ?= -O2 -g
CFLAGS  += $(OPT) $(WARN) -fPIC -D_GNU_SOURCE \
           -DPHONEHOME_DATADIR='"$(PREFIX)/share/phonehome"' \
           -DPHONEHOME_CMODDIR='"$(CMODDIR)"' -DPHONEHOME_LMODDIR='"$(LMODDIR)"' \
           -DPHONEHOME_PARTDIR='"$(PREFIX)/lib/phonehome"'

CORE_SRC = runtime/core.c runtime/binding.c runtime/probe.c runtime/procfs.c runtime/process.c \
           runtime/sandbox.c runtime/isolate.c runtime/wire.c runtime/store.c runtime/loop.c
CORE_OBJ = $(CORE_SRC:runtime/%.c=$(BUILD)/obj/%.o)
MAIN_OBJ = $(BUILD)/obj/main.o
BIN      = $(BUILD)/phonehome
MODULE   = $(BUILD)/lib/phonehome/core.so
# parts that core loads on first use, each with the library only it needs
PART_NAMES = http_client http_server sqlite json_strict pg statsd
PARTS      = $(PART_NAMES:%=$(BUILD)/lib/phonehome/%.so)

# Debian packages the build, the tests and the tools need.
DEBS = make gcc pkg-config lua5.4 liblua5.4-dev lua-cjson lua-busted lua-check \
       libuv1-dev libcurl4-openssl-dev uuid-dev libmicrohttpd-dev libsqlite3-dev \
       libjansson-dev libxxhash-dev lua-yaml lua-inifile cppcheck clang-format curl wrk openssl libpq-dev \
       postgresql sqlite3
DEPS_STAMP = $(BUILD)/.deps

BUSTED = $(LUA) /usr/bin/busted
Q = @
ifeq ($(V),1)
Q =
endif

.PHONY: all deps run test spec lint sanitize bench install clean

all: $(DEPS_STAMP) $(BIN) $(MODULE) $(PARTS)

# Installs whatever Debian package is missing, as root or through sudo.
$(DEPS_STAMP): Makefile
	$(Q)missing=$$(for p in $(DEBS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
	    | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    echo "APT $$missing"; \
	    if [ "$$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi; \
	    $$sudo apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends \
	        $$missing >/dev/null || exit 1; \
	fi
	$(Q)mkdir -p $(BUILD) && touch $@

# After the stamp, so that pkg-config flags are read once the -dev packages exist.
$(BUILD)/obj/%.o: runtime/%.c runtime/phonehome.h | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	@echo "CC $<"
	$(Q)$(CC) $(CFLAGS) $(shell pkg-config --cflags $(PKGS) libcurl libmicrohttpd sqlite3 jansson libpq libxxhash) -c -o $@ $<

# main.c and core.c have PREFIX compiled in: a change of PREFIX rebuilds them
PREFIX_STAMP = $(BUILD)/.prefix$(subst /,_,$(PREFIX))
$(BUILD)/obj/main.o $(BUILD)/obj/core.o: $(PREFIX_STAMP)
$(PREFIX_STAMP): | $(DEPS_STAMP)
	$(Q)rm -f $(BUILD)/.prefix_*; touch $@

$(BIN): $(MAIN_OBJ) $(CORE_OBJ)
	@echo "LD $@"
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(shell pkg-config --libs $(PKGS)) -ldl -lm

# The same core as a loadable module, for the specs; the interpreter supplies Lua.
$(MODULE): $(CORE_OBJ)
	@mkdir -p $(dir $@)
	@echo "LD $@"
	$(Q)$(CC) $(CFLAGS) -shared -o $@ $^ $(LDFLAGS) $(shell pkg-config --libs libuv uuid) -ldl

# what each part links: only the library it binds, and those of core it uses
PART_LIBS_http_client = libcurl libuv lua5.4
PART_LIBS_http_server = libmicrohttpd libuv lua5.4
PART_LIBS_sqlite      = sqlite3 libuv lua5.4
PART_LIBS_json_strict = jansson lua5.4
PART_LIBS_pg          = libpq libuv lua5.4
PART_LIBS_statsd      = libxxhash libuv lua5.4
# the HTTP server is two files: the server, and one request
$(BUILD)/lib/phonehome/http_server.so: $(BUILD)/obj/http_request.o
$(BUILD)/obj/http_server.o $(BUILD)/obj/http_request.o: runtime/http_server.h
# and so is PostgreSQL's: the arguments, and one job on the loop
$(BUILD)/lib/phonehome/pg.so: $(BUILD)/obj/pg_job.o
$(BUILD)/obj/pg.o $(BUILD)/obj/pg_job.o: runtime/pg.h
# SQLite: the collector's binding, and read-only queries off the loop (the Lua side, the
# worker on the thread pool)
$(BUILD)/lib/phonehome/sqlite.so: $(BUILD)/obj/sqlite_query.o $(BUILD)/obj/sqlite_query_work.o
$(BUILD)/obj/sqlite_query.o $(BUILD)/obj/sqlite_query_work.o: runtime/sqlite_query.h
# StatsD: the listener, the aggregates, and HyperLogLog sets
$(BUILD)/lib/phonehome/statsd.so: $(BUILD)/obj/statsd_agg.o $(BUILD)/obj/hll.o
$(BUILD)/obj/statsd.o $(BUILD)/obj/statsd_agg.o $(BUILD)/obj/hll.o: runtime/statsd.h
$(PARTS): $(BUILD)/lib/phonehome/%.so: $(BUILD)/obj/%.o
	@mkdir -p $(dir $@)
	@echo "LD $@"
	$(Q)$(CC) $(CFLAGS) -shared -o $@ $^ $(LDFLAGS) $(shell pkg-config --libs $(PART_LIBS_$*))

# The main job: a collector on 127.0.0.1, a small fixture of each bundled product
# (demo/run.lua, new figures every 5 s) and the daemon reading them and sending to the
# collector, a day passing in 30 s. The terminal shows each report once, as the collector
# receives it; the collector's, the products' and the daemon's logs are in RUN_DIR.
# Ctrl-C stops all three.
RUN_DIR = $(BUILD)/run
run: all
	$(Q)mkdir -p $(RUN_DIR); rm -rf $(RUN_DIR)/*.log $(RUN_DIR)/products; \
	$(BIN) collect --listen 127.0.0.1:0 --db $(RUN_DIR)/reports.db --print 2>$(RUN_DIR)/collect.log & \
	cpid=$$!; trap 'kill -TERM $$cpid $$ppid $$rpid 2>/dev/null; wait' INT TERM; \
	PHONEHOME_BUILD=$(BUILD) $(LUA) demo/run.lua $(BUILD) $(RUN_DIR)/products \
	    2>$(RUN_DIR)/products.log & ppid=$$!; \
	for i in $$(seq 100); do port=$$(sed -n 's/.*msg=listening addr=127.0.0.1:\([0-9]*\).*/\1/p' \
	    $(RUN_DIR)/collect.log); [ -n "$$port" ] && break; sleep 0.05; done; \
	echo "collector on http://127.0.0.1:$$port (log: $(RUN_DIR)/collect.log); Ctrl-C stops"; \
	for i in $$(seq 1200); do [ -f $(RUN_DIR)/products/products.conf ] && break; \
	    kill -0 $$ppid 2>/dev/null || break; sleep 0.1; done; \
	sed 's/^/  /' $(RUN_DIR)/products.log; \
	if [ ! -f $(RUN_DIR)/products/products.conf ]; then \
	    echo "the products did not start (log: $(RUN_DIR)/products.log)" >&2; \
	    kill -TERM $$cpid $$ppid 2>/dev/null; wait; exit 1; fi; \
	echo "products: new figures every 5 s (log: $(RUN_DIR)/products.log," \
	    "settings: $(RUN_DIR)/products/products.conf)"; \
	echo "daemon: reading them, a day in 30 s (log: $(RUN_DIR)/daemon.log); the reports:"; \
	$(BIN) run --endpoint http://127.0.0.1:$$port --time-scale 2880 --data-dir $(RUN_DIR)/data \
	    --config $(RUN_DIR)/products/products.conf --statsd off \
	    --statsd-unix $(RUN_DIR)/products/statsd.sock >$(RUN_DIR)/daemon.log 2>&1 & rpid=$$!; \
	wait $$rpid; kill -TERM $$cpid $$ppid 2>/dev/null; wait $$cpid $$ppid; true

spec: all
	$(Q)PHONEHOME_BUILD=$(BUILD) $(BUSTED) $(SPEC_ARGS)

test: all lint
	$(Q)PHONEHOME_BUILD=$(BUILD) $(BUSTED) $(SPEC_ARGS)

lint: $(DEPS_STAMP)
	@echo "LUACHECK lib scripts spec bench"
	$(Q)luacheck -q lib scripts spec bench demo
	@echo "CLANG-FORMAT runtime"
	$(Q)clang-format --dry-run -Werror runtime/*.c runtime/*.h
	@echo "CPPCHECK runtime"
	$(Q)cppcheck -q --error-exitcode=1 --enable=warning,performance,portability \
	    --std=c11 --inline-suppr runtime

# The whole spec suite against an AddressSanitizer + UBSan build. The module runs inside
# the stock interpreter, so the sanitizer runtime is preloaded into it.
SAN = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
sanitize: $(DEPS_STAMP)
	$(Q)$(MAKE) --no-print-directory BUILD=$(BUILD)/sanitize OPT="-O1 -g $(SAN)" \
	    LDFLAGS="$(SAN)" $(BUILD)/sanitize/phonehome $(BUILD)/sanitize/lib/phonehome/core.so \
	    $(PART_NAMES:%=$(BUILD)/sanitize/lib/phonehome/%.so)
	$(Q)PHONEHOME_BUILD=$(BUILD)/sanitize \
	    LD_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
	    ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 \
	    PHONEHOME_ASAN_OPTIONS=detect_leaks=1 \
	    $(BUSTED) $(SPEC_ARGS)

bench: all
	$(Q)$(LUA) bench/show.lua $(BUILD)
	$(Q)$(LUA) bench/collect.lua $(BUILD) 10
	$(Q)$(LUA) bench/run.lua $(BUILD) 60
	$(Q)$(LUA) bench/reload.lua $(BUILD) 1000
	$(Q)$(LUA) bench/sources.lua $(BUILD) 50
	$(Q)$(LUA) bench/statsd.lua $(BUILD)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/phonehome/scripts \
	    $(DESTDIR)$(PREFIX)/lib/phonehome
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/phonehome
	install -m 0644 $(PARTS) $(DESTDIR)$(PREFIX)/lib/phonehome
	for d in $$(cd lib && find phonehome -type d); do \
	    install -d $(DESTDIR)$(PREFIX)/share/phonehome/lib/$$d && \
	    install -m 0644 lib/$$d/*.lua $(DESTDIR)$(PREFIX)/share/phonehome/lib/$$d || exit 1; \
	done
	install -m 0644 scripts/*.lua $(DESTDIR)$(PREFIX)/share/phonehome/scripts

clean:
	rm -rf $(BUILD)/obj $(BUILD)/lib $(BUILD)/sanitize $(BIN)
