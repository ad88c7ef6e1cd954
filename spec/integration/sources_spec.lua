-- Sources: a script reads the product it reports on (config files, files, SQLite,
-- PostgreSQL, HTTP JSON, Prometheus metrics, its process), and a source that fails fails
-- only the fields that read it. Real files, a real HTTP server on 127.0.0.1, real
-- databases. #integration
local json = require("phonehome.json")
local h = require("support.helper")

-- A name for this run's stand-in product processes: another copy of the suite running at
-- the same time has its own, so neither finds the other's process.
local NAME = "fakeproduct" .. math.random(1e6, 9e6)
local postgres = require("support.postgres")

-- A scripts directory with one product "p": its sources, fields and extra text.
local function product(sources, fields, extra)
    local dir = h.tmpdir()
    h.write(dir .. "/p.lua", h.script("p", fields, "sources = {\n" .. sources .. "\n},\n"
        .. (extra or "")))
    return dir
end

local function show(dir, more, env)
    local args = { "show", "p", "--scripts", dir, "--data-dir", dir .. "/data" }
    for _, a in ipairs(more or {}) do args[#args + 1] = a end
    return h.run(args, env, 60)
end

local function field(name, ftype, body, opts)
    return string.format('{ name = %q, type = %q, description = "d", null = true, %s '
        .. "value = function(ctx) %s end },", name, ftype, opts or "", body)
end

-- The product's files: a config of each kind, a checkpoint, a SQLite database.
local function product_files()
    local d = h.tmpdir()
    h.write(d .. "/homeserver.yaml", "server_name: example.org\nreport_stats: true\n"
        .. "caches:\n  global_factor: 0.75\ndatabase:\n  args:\n    password: s3cret-yaml\n")
    h.write(d .. "/mongooseim.toml", '[general]\nhosts = ["a.example", "b.example"]\n')
    h.write(d .. "/app.ini", "[server]\nport=8080\n")
    h.write(d .. "/app.env", "# comment\nexport MODE=\"fast mode\"\nLEVEL=3 # trailing\n")
    h.write(d .. "/app.json", '{"nodes": [1, 2, 3]}')
    h.write(d .. "/writer.chk", string.pack("<i8", 123456789012))
    h.write(d .. "/instance.uuid", "c2d6a8d1-5f4e-4b9e-8e39-1d2f3a4b5c6d\n")
    h.sh("sqlite3 " .. d .. "/app.db \"CREATE TABLE users(name TEXT, ts INTEGER); "
        .. "INSERT INTO users VALUES('a', 1), ('b', 2), ('c', 3);\"")
    return d
end

describe("sources #integration", function()
    after_each(h.cleanup)

    it("reads every kind of config file, a binary file and a SQLite database", function()
        local d = product_files()
        local dir = product(string.format([[
{ name = "hs", kind = "yaml", description = "homeserver.yaml", path = %q },
{ name = "mim", kind = "toml", description = "mongooseim.toml", path = %q },
{ name = "ini", kind = "ini", description = "an ini file", path = %q },
{ name = "envf", kind = "env", description = "an env file", path = %q },
{ name = "js", kind = "json", description = "a JSON file", path = %q },
{ name = "chk", kind = "file", format = "int64le", description = "checkpoint", path = %q },
{ name = "db", kind = "sql", description = "the database", database = %q,
  queries = { users = "SELECT count(*) AS n FROM users WHERE ts < :limit",
              bad = "SELECT count(*) FROM missing_table" },
  params = { limit = 3 } },
]], d .. "/homeserver.yaml", d .. "/mongooseim.toml", d .. "/app.ini", d .. "/app.env",
            d .. "/app.json", d .. "/writer.chk", d .. "/app.db"),
            field("server", "string", "return ctx.sources.hs.server_name", 'source = "hs",')
            .. field("factor", "number", "return ctx.settings.factor", "")
            .. field("hosts", "int", "return #ctx.sources.mim.general.hosts", 'source = "mim",')
            .. field("port", "int", "return ctx.sources.ini.server.port", 'source = "ini",')
            .. field("mode", "string", "return ctx.sources.envf.MODE .. ctx.sources.envf.LEVEL",
                     'source = "envf",')
            .. field("nodes", "int", "return #ctx.sources.js.nodes", 'source = "js",')
            .. field("chk", "int", "return ctx.sources.chk", 'source = "chk",')
            .. field("users", "int", "return ctx.sources.db.users[1].n", 'source = "db",')
            .. field("engine", "string", "return ctx.sources.db.engine", 'source = "db",')
            .. field("bad", "int", "return ctx.sources.db.bad[1].n", 'source = "db",'),
            [[settings = { { name = "factor", type = "number", default = 0.5, source = "hs",
                             key = "caches.global_factor", description = "d" } },]])
        local r = show(dir)
        assert.are.equal(0, r.code, r.err)
        local out = json.decode(r.out)
        assert.are.same({ server = "example.org", factor = 0.75, hosts = 2, port = 8080,
                          mode = "fast mode3", nodes = 3, chk = 123456789012, users = 2,
                          engine = "sqlite", bad = json.null }, out)
        -- the failed query fails its field only, with one line naming product, source,
        -- field and error
        assert.matches("product=p msg=.-field 'bad': source 'db': query 'bad': no such "
            .. "table: missing_table", r.err)
        -- a setting given on the command line wins over the product's config
        r = show(dir, { "--set", "p.factor=2.5" })
        assert.are.equal(2.5, json.decode(r.out).factor)
    end)

    it("reads a config in layers: files and directories in order, a later key winning",
       function()
        local d = h.tmpdir()
        h.write(d .. "/main.yaml", "name: main\nlevel: 1\nnested:\n  a: 1\n  b: 2\n")
        h.sh("mkdir " .. d .. "/conf.d " .. d .. "/empty.d")
        -- a directory gives its *.yaml files in byte order; other names are not read
        h.write(d .. "/conf.d/20-level.yaml", "level: 2\n")
        h.write(d .. "/conf.d/10-nested.yaml", "nested:\n  a: 10\n")
        h.write(d .. "/conf.d/30-level.yml", "level: 99\n")
        h.write(d .. "/conf.d/notes.txt", "level: 98\n")
        h.write(d .. "/last.yaml", "name: last\n")
        local function dir_for(paths, max)
            return product(string.format('{ name = "cfg", kind = "yaml", description = "d", '
                .. "path = %s%s },", paths, max and (", max_bytes = " .. max) or ""),
                field("cfg", "string", "local c = ctx.sources.cfg return c.name .. ' ' .. "
                    .. "c.level .. ' ' .. tostring(c.nested.a) .. ' ' .. tostring(c.nested.b)",
                    'source = "cfg",'))
        end
        local paths = string.format("{ %q, %q, %q, %q }", d .. "/main.yaml", d .. "/conf.d/",
                                    d .. "/empty.d", d .. "/last.yaml")
        local r = show(dir_for(paths))
        assert.are.equal(0, r.code, r.err)
        -- top-level keys are replaced whole: nested.b is gone with main.yaml's nested
        assert.are.same({ cfg = "last 2 10 nil" }, json.decode(r.out))
        -- docs lists every path
        r = h.run({ "docs", "p", "--scripts", dir_for(paths) })
        assert.matches(d .. "/conf.d/", r.out, 1, true)
        -- a broken layer fails the source, naming its file; so does a missing one
        h.write(d .. "/conf.d/25-bad.yaml", "level: [1,\n")
        r = show(dir_for(paths))
        assert.are.same({ cfg = json.null }, json.decode(r.out))
        assert.matches("source 'cfg': " .. d .. "/conf.d/25-bad.yaml: ", r.err, 1, true)
        os.remove(d .. "/conf.d/25-bad.yaml")
        h.write(d .. "/conf.d/26-list.yaml", "- a\n- b\n")
        r = show(dir_for(paths))
        assert.matches(d .. "/conf.d/26-list.yaml: not a mapping of keys", r.err, 1, true)
        os.remove(d .. "/conf.d/26-list.yaml")
        r = show(dir_for(string.format("{ %q, %q }", d .. "/main.yaml", d .. "/gone.yaml")))
        assert.matches(d .. "/gone.yaml", r.err, 1, true)
        assert.are.same({ cfg = json.null }, json.decode(r.out))
        -- the size cap holds for all the files together
        r = show(dir_for(paths, 60))
        assert.are.same({ cfg = json.null }, json.decode(r.out))
        assert.matches("larger than", r.err, 1, true)
        -- a list that is not one of paths is refused when the script is checked
        r = show(dir_for("{ 1, 2 }"))
        assert.matches("path must be a string or a list of strings", r.err, 1, true)
    end)

    it("fails only the fields of a source that fails, with a fallback, null or no report",
       function()
        local d = product_files()
        h.write(d .. "/broken.yaml", "a: [1, 2\n")
        local dir = product(string.format([[
{ name = "gone", kind = "yaml", description = "missing", path = %q },
{ name = "broken", kind = "yaml", description = "malformed", path = %q },
{ name = "ok", kind = "env", description = "fine", path = %q },
]], d .. "/nothing.yaml", d .. "/broken.yaml", d .. "/app.env"),
            field("a", "int", "return ctx.sources.gone.x", 'source = "gone",')
            .. field("b", "int", "return ctx.sources.broken.a[1]", 'source = "broken", '
                .. "fallback = 7,")
            .. field("c", "string", "return ctx.sources.ok.LEVEL", 'source = "ok",')
            .. field("d", "string", "return ctx.sources.ok.LEVEL", ""))
        local r = show(dir)
        assert.are.equal(0, r.code, r.err)
        assert.are.same({ a = json.null, b = 7, c = "3", d = json.null }, json.decode(r.out))
        assert.matches("field 'a': source 'gone' failed: .-nothing.yaml: No such file", r.err)
        assert.matches("field 'b': source 'broken': .-broken.yaml: .-; the fallback 7", r.err)
        -- a field reading a source it does not declare fails
        assert.matches("field 'd': reads source 'ok' without declaring it", r.err)
        -- a field that may not be null and has no fallback: no report, and why
        dir = product(string.format('{ name = "gone", kind = "yaml", description = "m", '
            .. "path = %q },", d .. "/nothing.yaml"),
            '{ name = "a", type = "int", description = "d", source = "gone", '
            .. "value = function(ctx) return ctx.sources.gone.x end },")
        r = show(dir)
        assert.are.equal(1, r.code)
        assert.matches("field 'a': source 'gone' failed", r.err)
    end)

    it("reads an HTTP JSON API with basic auth and a Prometheus endpoint; never shows the "
       .. "password", function()
        local root = h.tmpdir()
        h.write(root .. "/info.json", '{"esVersion": "23.10.0", "list": [1, 2]}')
        h.write(root .. "/metrics", "# TYPE up gauge\nup{job=\"a\"} 1\nup{job=\"b\"} 0\n"
            .. "requests_total{code=\"200\"} 5\nrequests_total{code=\"500\"} 2\n")
        -- "admin:changeit"
        h.write(root .. "/.auth", "Basic YWRtaW46Y2hhbmdlaXQ=\n")
        local api = h.endpoint("serve:" .. root)
        local pwfile = h.tmpdir() .. "/pw"
        h.write(pwfile, "changeit\n")
        local dir = product(string.format([[
{ name = "info", kind = "http", description = "the node's info", url = %q,
  auth = { basic = { user = "admin", password_file = %q } } },
{ name = "wrong", kind = "http", description = "with a wrong password", url = %q,
  auth = { basic = { user = "admin", password = "hunter2-wrong" } } },
{ name = "metrics", kind = "prometheus", description = "its metrics", url = %q,
  auth = { basic = { user = "admin", password = "changeit" } } },
]], api.url .. "/info.json", pwfile, api.url .. "/info.json", api.url .. "/metrics"),
            field("version", "string", "return ctx.sources.info.esVersion", 'source = "info",')
            .. field("denied", "string", "return ctx.sources.wrong.esVersion",
                     'source = "wrong",')
            .. field("up", "number", "return ctx.sources.metrics:value('up', { job = 'a' })",
                     'source = "metrics",')
            .. field("requests", "number", "return ctx.sources.metrics:sum('requests_total')",
                     'source = "metrics",'))
        local r = show(dir)
        assert.are.equal(0, r.code, r.err)
        assert.are.same({ version = "23.10.0", denied = json.null, up = 1.0, requests = 7.0 },
                        json.decode(r.out))
        assert.matches("field 'denied': source 'wrong' failed: .-HTTP 401", r.err)
        -- explain: per source its target and time, per field its value and source
        r = show(dir, { "--explain" })
        assert.are.equal(0, r.code, r.err)
        assert.matches("info%s+http%s+" .. api.url:gsub("%p", "%%%0") .. "/info.json%s+[%d.]+ ms",
                       r.out)
        assert.matches("version%s+23.10.0%s+from info%s+[%d.]+ ms", r.out)
        r = h.run({ "docs", "p", "--scripts", dir })
        assert.matches("### `info` %(http%)", r.out)
        assert.matches("used by: `version`", r.out)
        for _, text in ipairs({ r.out, r.err, show(dir, { "--explain" }).out,
                                show(dir).err }) do
            assert.is_nil(text:find("changeit", 1, true))
            assert.is_nil(text:find("hunter2", 1, true))
        end
        api.stop()
    end)

    it("refuses a write statement and never changes the product's database", function()
        local d = product_files()
        local before = h.sh("sha256sum " .. d .. "/app.db")
        local dir = product(string.format([[
{ name = "db", kind = "sql", description = "the database", database = %q,
  queries = { del = "DELETE FROM users", ins = "INSERT INTO users VALUES ('x', 9)",
              two = "SELECT 1; DELETE FROM users", n = "SELECT count(*) AS n FROM users" } },
]], d .. "/app.db"),
            field("del", "int", "return #ctx.sources.db.del", 'source = "db",')
            .. field("ins", "int", "return #ctx.sources.db.ins", 'source = "db",')
            .. field("two", "int", "return #ctx.sources.db.two", 'source = "db",')
            .. field("n", "int", "return ctx.sources.db.n[1].n", 'source = "db",'))
        local r = show(dir)
        assert.are.equal(0, r.code, r.err)
        assert.are.same({ del = json.null, ins = json.null, two = json.null, n = 3 },
                        json.decode(r.out))
        assert.matches("query 'del': not a read%-only statement", r.err)
        assert.matches("query 'two': one statement per query", r.err)
        assert.are.equal(before, h.sh("sha256sum " .. d .. "/app.db"))
        -- a database that does not exist is not created
        dir = product(string.format('{ name = "db", kind = "sql", description = "d", '
            .. 'database = %q, queries = { n = "SELECT 1 AS n" } },', d .. "/none.db"),
            field("n", "int", "return ctx.sources.db.n[1].n", 'source = "db",'))
        r = show(dir)
        assert.are.equal(0, r.code, r.err)
        assert.matches("source 'db' failed: .-none.db", r.err)
        assert.is_false(os.rename(d .. "/none.db", d .. "/none.db") or false)
    end)

    it("runs the same queries on PostgreSQL, read-only, its URL from the product's "
       .. "environment, and never shows the password", function()
        local pg = postgres.start()
        pg.psql("CREATE TABLE users(name TEXT, creation_ts BIGINT, appservice_id TEXT); "
            .. "INSERT INTO users VALUES ('a', 1, NULL), ('b', 2, 'irc'), ('c', 3, NULL);")
        local pid = tonumber(h.sh("DATABASE_URL=" .. h.quote(pg.url) .. " bash -c "
            .. "'exec -a " .. NAME .. " sleep 600' >/dev/null 2>&1 & echo $!"))
        -- busted keeps one finally per test: both are stopped in it
        finally(function()
            h.sh("kill " .. pid)
            pg.stop()
        end)
        local queries = [[queries = {
      total = "SELECT count(*) AS n FROM users",
      native = "SELECT count(*) AS n FROM users WHERE appservice_id IS NULL AND creation_ts < :t",
      write = "CREATE TABLE x (a int)",
      missing = "SELECT count(*) FROM nope" },
  params = { t = 3 } ]]
        local fields = field("total", "int", "return ctx.sources.db.total[1].n", 'source = "db",')
            .. field("native", "int", "return ctx.sources.db.native[1].n", 'source = "db",')
            .. field("write", "int", "return #ctx.sources.db.write", 'source = "db",')
            .. field("missing", "int", "return #ctx.sources.db.missing", 'source = "db",')
            .. field("engine", "string", "return ctx.sources.db.engine .. ' '"
                .. " .. ctx.sources.db.version", 'source = "db",')
        local dir = product('{ name = "db", kind = "sql", description = "the database", '
            .. 'database = function(ctx) return ctx.process.env("DATABASE_URL") end, '
            .. queries .. "},", fields,
            'process = { command = "^' .. NAME .. '", env = { "DATABASE_URL" } },')
        local r = show(dir)
        assert.are.equal(0, r.code, r.err)
        local out = json.decode(r.out)
        assert.are.same({ 3, 1, json.null, json.null }, { out.total, out.native, out.write,
                                                          out.missing })
        assert.matches("^postgresql 15%.%d+$", out.engine)
        assert.matches("query 'write': .-read%-only transaction", r.err)
        assert.matches("query 'missing': .-nope", r.err)
        -- the same queries on a SQLite copy give the same figures
        local d = h.tmpdir()
        h.sh("sqlite3 " .. d .. "/db \"CREATE TABLE users(name TEXT, creation_ts INTEGER, "
            .. "appservice_id TEXT); INSERT INTO users VALUES ('a', 1, NULL), ('b', 2, 'irc'), "
            .. "('c', 3, NULL);\"")
        local lite = product(string.format('{ name = "db", kind = "sql", description = "d", '
            .. "database = %q, ", d .. "/db") .. queries .. "},", fields)
        local lout = json.decode(show(lite).out)
        assert.are.same({ out.total, out.native }, { lout.total, lout.native })
        -- a wrong password fails the fields, and no output holds either password
        local bad = pg.url:gsub(":" .. pg.password:gsub("%p", "%%%0") .. "@", ":wrong-pass-xyz@")
        assert.is_truthy(bad:find("wrong-pass-xyz", 1, true))
        dir = product(string.format('{ name = "db", kind = "sql", description = "d", '
            .. 'database = %q, queries = { n = "SELECT 1 AS n" } },', bad),
            field("n", "int", "return ctx.sources.db.n[1].n", 'source = "db",'))
        r = show(dir)
        assert.are.equal(0, r.code, r.err)
        assert.matches("field 'n': source 'db' failed: .-password authentication failed", r.err)
        local docs = h.run({ "docs", "p", "--scripts", dir }).out
        for _, text in ipairs({ r.out, r.err, docs, show(dir, { "--explain" }).out }) do
            assert.is_nil(text:find("wrong-pass-xyz", 1, true))
            assert.is_nil(text:find(pg.password, 1, true))
        end
        -- a query that hangs ends at the source's timeout
        dir = product(string.format('{ name = "db", kind = "sql", description = "d", '
            .. 'database = %q, timeout = "1s", queries = { n = "SELECT pg_sleep(30)" } },',
            pg.url), field("n", "int", "return #ctx.sources.db.n", 'source = "db",'))
        r = show(dir)
        assert.are.equal(0, r.code, r.err)
        assert.matches("source 'db' failed: timed out after 1 s", r.err)
    end)

    it("computes a source's options from another source and the product's process", function()
        local d = product_files()
        local pid = tonumber(h.sh("DATA_DIR=" .. d .. " PASSWORD=s3cret-env "
            .. "bash -c 'exec -a " .. NAME .. " sleep 600' >/dev/null 2>&1 & echo $!"))
        finally(function() h.sh("kill " .. pid) end)
        local dir = product([[
{ name = "hs", kind = "yaml", description = "config",
  path = function(ctx) return ctx.process.env("DATA_DIR") .. "/homeserver.yaml" end },
{ name = "db", kind = "sql", description = "db",
  database = function(ctx)
      return ctx.sources.hs.server_name and ctx.process.env("DATA_DIR") .. "/app.db" end,
  queries = { n = "SELECT count(*) AS n FROM users" } },
]], field("n", "int", "return ctx.sources.db.n[1].n", 'source = "db",')
            .. field("pid", "int", "return ctx.process.pid", ""),
            'process = { command = "^' .. NAME .. '", env = { "DATA_DIR", "PASSWORD" } },')
        local r = show(dir)
        assert.are.equal(0, r.code, r.err)
        assert.are.same({ n = 3, pid = pid }, json.decode(r.out))
        -- docs lists what is read of the process, never a value
        r = h.run({ "docs", "p", "--scripts", dir })
        assert.matches("command line matching `%^" .. NAME .. "`", r.out)
        assert.matches("reads its variable `DATA_DIR`", r.out)
        assert.is_nil(r.out:find("s3cret", 1, true))
    end)

    it("reads the opt-out switch from the product's config and process, before any other "
       .. "source", function()
        local d = product_files()
        local root = h.tmpdir()
        h.write(root .. "/stats.json", '{"n": 5}')
        local api = h.endpoint("serve:" .. root)
        local sources = string.format([[
{ name = "hs", kind = "yaml", description = "config", path = %q },
{ name = "api", kind = "http", description = "stats", url = %q },
]], d .. "/homeserver.yaml", api.url .. "/stats.json")
        local optin = [[
settings = { { name = "report_stats", type = "bool", default = false, source = "hs",
               key = "report_stats", description = "d" } },
optout = { default = "off", settings = { { name = "report_stats", on = { true } } },
           env = { { name = "PRODUCT_TELEMETRY", off = { "0" } } } },
process = { command = "^]] .. NAME .. [[" },
]]
        local ep = h.endpoint("201")
        local dir = h.tmpdir()
        h.write(dir .. "/p.lua", (h.script("p", field("n", "int",
            "return ctx.sources.api.n", 'source = "api",'), "sources = {\n" .. sources
            .. "},\n" .. optin):gsub('optout = { default = "on" },', "")))
        local pid = tonumber(h.sh("bash -c 'exec -a " .. NAME .. " sleep 600' >/dev/null 2>&1 & "
            .. "echo $!"))
        local r = h.run({ "run", "--once", "--scripts", dir, "--data-dir", h.tmpdir(),
                          "--endpoint", ep.url }, nil, 60)
        h.sh("kill " .. pid)
        assert.are.equal(0, r.code, r.err)
        assert.matches("msg=\"report sent\"", r.err)
        assert.are.equal('{"n":5}', ep.requests()[1].body)
        local api_reads = #api.requests()
        -- the product's environment turns it off: nothing read but what decides
        pid = tonumber(h.sh("PRODUCT_TELEMETRY=0 bash -c 'exec -a " .. NAME .. " sleep 600' "
            .. ">/dev/null 2>&1 & echo $!"))
        r = h.run({ "run", "--once", "--scripts", dir, "--data-dir", h.tmpdir(),
                    "--endpoint", ep.url }, nil, 60)
        h.sh("kill " .. pid)
        assert.matches("msg=\"not sending\" reason=\"PRODUCT_TELEMETRY=0 %(product process %d+%)\"",
                       r.err)
        -- the product's config turns it off
        h.write(d .. "/homeserver.yaml", "report_stats: false\n")
        pid = tonumber(h.sh("bash -c 'exec -a " .. NAME .. " sleep 600' >/dev/null 2>&1 & echo $!"))
        r = h.run({ "run", "--once", "--scripts", dir, "--data-dir", h.tmpdir(),
                    "--endpoint", ep.url }, nil, 60)
        h.sh("kill " .. pid)
        assert.matches("msg=\"not sending\" reason=\"default %(opt%-in: not turned on%)\"",
                       r.err)
        assert.are.equal(1, #ep.requests())
        assert.are.equal(api_reads, #api.requests())
        ep.stop()
        api.stop()
    end)

    it("takes the instance id from the product, falling back to its own", function()
        local d = product_files()
        local dir = product(string.format('{ name = "id", kind = "file", description = "id", '
            .. "path = %q },", d .. "/instance.uuid"),
            '{ name = "uuid", type = "string", description = "d", '
            .. "value = function(ctx) return ctx.instance_id end },",
            'identity = { source = "id", value = function(ctx) '
            .. "return (ctx.sources.id:gsub('%s+$', '')) end },")
        local r = show(dir)
        assert.are.equal(0, r.code, r.err)
        assert.are.equal("c2d6a8d1-5f4e-4b9e-8e39-1d2f3a4b5c6d", json.decode(r.out).uuid)
        os.remove(d .. "/instance.uuid")
        r = show(dir)
        assert.are.equal(0, r.code, r.err)
        assert.matches("^%x+%-%x+%-%x+%-%x+%-%x+$", json.decode(r.out).uuid)
        assert.matches("the product's instance id could not be read", r.err)
    end)

    it("a hanging source delays no other product, and SIGTERM still stops at once", function()
        local root = h.tmpdir()
        h.write(root .. "/x.json", "{}")
        local api = h.endpoint("serve:" .. root)
        h.sh("kill -STOP " .. api.pid)  -- accepts connections, never answers
        local dir = h.tmpdir()
        h.write(dir .. "/slow.lua", (h.script("slow", field("n", "int",
            "return ctx.sources.api.n", 'source = "api",'), string.format(
            'sources = { { name = "api", kind = "http", description = "d", url = %q, '
            .. 'timeout = "30s" } },', api.url .. "/x.json"))
            :gsub('first = "5m"', 'first = "1s"')))
        h.write(dir .. "/fast.lua", (h.script("fast", '{ name = "n", type = "int", '
            .. 'description = "d", value = 1 },'):gsub('first = "5m", interval = "1h"',
            'first = "360s", interval = "360s"')))
        local ep = h.endpoint("201")
        local d = h.spawn({ "run", "--scripts", dir, "--data-dir", h.tmpdir(), "--endpoint",
                            ep.url, "--time-scale", "3600" })
        -- the slow product's source is being read; the fast one reports every 100 ms
        h.wait_for(d.err, 'product=fast msg="report sent"')
        local function sent() return h.count(h.slurp(d.err), 'product=fast msg="report sent"') end
        local before = sent()
        for _ = 1, 1500 do
            if sent() >= before + 10 then break end
            h.sh("sleep 0.02")
        end
        assert.is_true(sent() >= before + 10)
        assert.is_nil(h.slurp(d.err):find('product=slow msg="report sent"', 1, true))
        h.sh("kill -TERM " .. d.pid)
        assert.are.equal(0, h.exit_code(d, 15))
        api.stop()
        ep.stop()
    end)

    it("a reload whose dry build cannot read a source still applies the new version",
       function()
        local dir = h.tmpdir()
        local body = '{ name = "gone", kind = "yaml", description = "m", path = "/nonexistent/'
            .. 'x.yaml" }'
        local function write(v)
            h.write(dir .. "/p.lua", h.script("p", '{ name = "a", type = "int", '
                .. 'description = "d", source = "gone", value = function(ctx) '
                .. "return ctx.sources.gone.x end },", "version = " .. string.format("%q", v)
                .. ", sources = { " .. body .. " },"))
        end
        write("1")
        local d = h.spawn({ "run", "--scripts", dir, "--data-dir", h.tmpdir() })
        h.wait_for(d.err, "msg=started")
        write("2")
        h.wait_for(d.err, 'msg=reloaded.-version=2', 30)
        h.sh("kill -TERM " .. d.pid)
        assert.are.equal(0, h.exit_code(d, 15))
    end)
end)
