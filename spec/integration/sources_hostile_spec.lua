-- Sources against hostile product data and hostile scripts: what a script or the product
-- it reads can do must stay within the source it concerns, never write to the product,
-- never reach the host's memory or the loop, and never show a credential. #integration
local json = require("phonehome.json")
local h = require("support.helper")
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

describe("hostile sources #integration", function()
    after_each(h.cleanup)

    it("never writes to PostgreSQL, whatever a query does to the session", function()
        local pg = postgres.start()
        finally(pg.stop)
        pg.psql("CREATE TABLE users(name TEXT); INSERT INTO users VALUES ('a');")
        -- queries run in the order of their names: each pair tries to make the session
        -- writable, then to write
        local dir = product(string.format([[
{ name = "db", kind = "sql", description = "d", database = %q, queries = {
  a1 = "SELECT set_config('default_transaction_read_only', 'off', false) AS v",
  a2 = "INSERT INTO users VALUES ('a2')",
  b1 = "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
  b2 = "INSERT INTO users VALUES ('b2')",
  c1 = "BEGIN READ WRITE", c2 = "INSERT INTO users VALUES ('c2')", c3 = "COMMIT",
  d1 = "SET TRANSACTION READ WRITE", d2 = "INSERT INTO users VALUES ('d2')",
  e1 = "ROLLBACK", e2 = "CREATE TABLE more (a int)",
  n = "SELECT count(*) AS n FROM users" } },
]], pg.url),
            field("writes", "int", "local n = 0 for _, q in ipairs({ 'a2', 'b2', 'c2', 'd2', "
                .. "'e2' }) do if pcall(function() return ctx.sources.db[q] end) then n = n + 1 "
                .. "end end return n", 'source = "db",')
            .. field("n", "int", "return ctx.sources.db.n[1].n", 'source = "db",'))
        for _ = 1, 2 do
            local r = show(dir)
            assert.are.equal(0, r.code, r.err)
            assert.are.same({ writes = 0, n = 1 }, json.decode(r.out))
        end
    end)
    it("reads a SQLite database in WAL mode without creating files beside it", function()
        local d = h.tmpdir()
        h.sh("sqlite3 " .. d .. "/app.db \"PRAGMA journal_mode=wal; CREATE TABLE users(n TEXT); "
            .. "INSERT INTO users VALUES ('a'), ('b');\" >/dev/null")
        local before = h.sh("ls " .. d)
        assert.are.equal("app.db", before)
        local dir = product(string.format('{ name = "db", kind = "sql", description = "d", '
            .. 'database = %q, queries = { n = "SELECT count(*) AS n FROM users" } },',
            d .. "/app.db"), field("n", "int", "return ctx.sources.db.n[1].n", 'source = "db",'))
        local r = show(dir)
        assert.are.equal(0, r.code, r.err)
        assert.are.same({ n = 2 }, json.decode(r.out))
        -- the product not running, phonehome made no -wal or -shm file (as root, they
        -- would be root's, and the product could not open its own database)
        assert.are.equal(before, h.sh("ls " .. d))
        -- the product running, with rows still in its WAL: they are read. It runs until
        -- its input, a FIFO held open here (read-write, so that opening it waits for no one).
        h.sh("mkfifo " .. d .. "/in")
        local input = assert(io.open(d .. "/in", "r+"))
        local pid = tonumber(h.sh("sqlite3 -cmd 'PRAGMA wal_autocheckpoint=0' -cmd \"INSERT "
            .. "INTO users VALUES ('c')\" " .. d .. "/app.db >/dev/null 2>&1 <" .. d .. "/in & "
            .. "echo $!"))
        finally(function()
            input:close()
            h.sh("kill " .. pid .. " 2>/dev/null")
        end)
        for _ = 1, 500 do
            local f = io.open(d .. "/app.db-wal", "rb")
            local size = f and f:seek("end") or 0
            if f then f:close() end
            if size > 0 then break end
            h.sh("sleep 0.02")
        end
        r = show(dir)
        assert.are.equal(0, r.code, r.err)
        assert.are.same({ n = 3 }, json.decode(r.out))
    end)
end)
