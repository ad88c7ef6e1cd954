-- core.sqlite_query: read-only queries of a product's SQLite database on the thread pool,
-- bounded in time, rows and bytes, while the loop goes on.
local core = require("phonehome.core")
local h = require("support.helper")

-- A long query: SQLite counts to a billion (about a minute).
local LONG = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c"
    .. " WHERE x < 1000000000) SELECT count(*) AS n FROM c"

-- Runs the loop until the job calls back (or 20 s pass): the callback's arguments.
local function query(opts)
    local got, guard
    core.sqlite_query(opts, function(...)
        got = table.pack(...)
        guard:close()
        core.stop()
    end)
    guard = core.timer(20000, function() core.stop() end)
    core.run()
    guard:close()
    assert(got, "no callback within 20 s")
    return got[1], got[2]
end

-- A database at dir/db.sqlite made with the read-write binding.
local function make_db(dir, sql)
    local path = dir .. "/db.sqlite"
    local db = assert(core.db_open(path))
    assert(db:exec(sql))
    db:close()
    return path
end

local SCHEMA = [[
CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, score REAL, avatar BLOB, ts INTEGER);
INSERT INTO users VALUES (1, 'ann', 1.5, x'00ff', 1700000100);
INSERT INTO users VALUES (2, 'bob', NULL, NULL, 1600000000);
INSERT INTO users VALUES (3, 'cy', 3.0, x'', 1700000200);
]]

describe("core.sqlite_query", function()
    local dir, path
    before_each(function()
        dir = h.tmpdir()
        path = make_db(dir, SCHEMA)
    end)
    after_each(h.cleanup)

    local function rows_of(sql)
        local r = assert(query({ path = path, queries = { { sql = sql } } }))
        return r.queries[1]
    end

    it("counts, and says which SQLite ran it", function()
        local r = assert(query({ path = path, queries = {
            { sql = "SELECT count(*) AS n FROM users" },
        } }))
        assert.truthy(r.version:match("^3%.%d+%.%d+"), r.version)
        assert.are.same({ columns = { "n" }, rows = { { n = 3 } } }, r.queries[1])
        assert.are.equal("integer", math.type(r.queries[1].rows[1].n))
    end)

    it("gives typed rows: integer, number, string, blob as string; NULL is absent", function()
        local q = rows_of("SELECT id, name, score, avatar FROM users ORDER BY id")
        assert.are.same({ "id", "name", "score", "avatar" }, q.columns)
        assert.are.same({ id = 1, name = "ann", score = 1.5, avatar = "\0\255" }, q.rows[1])
        assert.are.same({ id = 2, name = "bob" }, q.rows[2])
        assert.are.same({ id = 3, name = "cy", score = 3.0, avatar = "" }, q.rows[3])
        assert.are.equal("float", math.type(q.rows[3].score))
        assert.are.same({ columns = { "x" }, rows = { {} } }, rows_of("SELECT NULL AS x"))
    end)

    it("binds positional parameters: integer, number, string, boolean", function()
        local r = assert(query({ path = path, queries = {
            { sql = "SELECT count(*) AS n FROM users WHERE ts > ?1 AND name <> ?2",
              params = { 1700000000, "x" } },
            { sql = "SELECT ?1 AS i, ?2 AS f, ?3 AS s, ?4 AS t, ?5 AS b",
              params = { 7, 2.5, "é", true, false } },
            { sql = "SELECT ?1 AS a", params = { 1, 2 } },
        } }))
        assert.are.same({ { n = 2 } }, r.queries[1].rows)
        assert.are.same({ { i = 7, f = 2.5, s = "é", t = 1, b = 0 } }, r.queries[2].rows)
        h.has("2 parameters given, the statement takes 1", r.queries[3].error)
    end)

    it("refuses writes, query by query, while the other queries of the job succeed", function()
        local writes = {
            "INSERT INTO users (name) VALUES ('eve')",
            "DELETE FROM users",
            "CREATE TABLE t (x)",
            "ATTACH " .. "'" .. dir .. "/other.sqlite' AS other",
            "PRAGMA user_version = 5",
            "PRAGMA query_only = 0",
            "VACUUM INTO '" .. dir .. "/copy.sqlite'",
        }
        local queries = { { sql = "SELECT count(*) AS n FROM users" } }
        for _, sql in ipairs(writes) do queries[#queries + 1] = { sql = sql } end
        queries[#queries + 1] = { sql = "PRAGMA table_info(users)" }
        queries[#queries + 1] = { sql = "SELECT count(*) AS n FROM users" }
        local r = assert(query({ path = path, queries = queries }))
        assert.are.same({ { n = 3 } }, r.queries[1].rows)
        for i, sql in ipairs(writes) do
            assert.are.equal("not a read-only statement", r.queries[i + 1].error, sql)
        end
        assert.are.equal(5, #r.queries[#queries - 1].rows)
        assert.are.same({ { n = 3 } }, r.queries[#queries].rows)
        assert.is_nil(io.open(dir .. "/other.sqlite"))
        assert.is_nil(io.open(dir .. "/copy.sqlite"))
        assert.are.same({ { n = 3 } }, rows_of("SELECT count(*) AS n FROM users").rows)
        assert.are.same({ { user_version = 0 } }, rows_of("PRAGMA user_version").rows)
    end)

    it("refuses two statements in one query, but not a trailing comment", function()
        local r = assert(query({ path = path, queries = {
            { sql = "SELECT 1 AS a; SELECT 2 AS b" },
            { sql = "SELECT 1 AS a; DELETE FROM users" },
            { sql = "SELECT 1 AS a; -- the end\n /* really */ ;" },
        } }))
        assert.are.equal("one statement per query", r.queries[1].error)
        assert.are.equal("one statement per query", r.queries[2].error)
        assert.are.same({ { a = 1 } }, r.queries[3].rows)
    end)

    it("fails only the query of a missing table", function()
        local r = assert(query({ path = path, queries = {
            { sql = "SELECT * FROM nope" },
            { sql = "SELECT count(*) AS n FROM users" },
        } }))
        h.has("no such table: nope", r.queries[1].error)
        assert.are.same({ { n = 3 } }, r.queries[2].rows)
    end)

    it("fails the job for a missing file, naming it, and does not create it", function()
        local missing = dir .. "/missing.sqlite"
        local r, err = query({ path = missing, queries = { { sql = "SELECT 1" } } })
        assert.is_nil(r)
        h.has(missing, err)
        assert.is_nil(io.open(missing))
    end)

    it("fails the job for a file that is not a database", function()
        local junk = h.write(dir .. "/junk.sqlite", ("not a database\n"):rep(100))
        local r, err = query({ path = junk, queries = { { sql = "SELECT 1" } } })
        assert.is_nil(r)
        h.has(junk, err)
        h.has("not a database", err)
        assert.are.equal(("not a database\n"):rep(100), h.slurp(junk))
    end)

    it("times a long query out while the loop keeps running", function()
        local last, gap, ticks, tick, done = core.monotonic(), 0, 0, nil, false
        local ticker
        tick = function()
            local now = core.monotonic()
            gap, last, ticks = math.max(gap, now - last), now, ticks + 1
            if not done then ticker = core.timer(10, tick) end
        end
        ticker = core.timer(10, tick)
        local started = core.monotonic()
        local r = assert(query({ path = path, timeout = 0.3, queries = {
            { sql = "SELECT count(*) AS n FROM users" },
            { sql = LONG },
            { sql = "SELECT count(*) AS n FROM users" },
        } }))
        local took = core.monotonic() - started
        done = true
        ticker:close()
        assert.are.same({ { n = 3 } }, r.queries[1].rows)
        assert.are.equal("timed out after 0.3 s", r.queries[2].error)
        assert.are.equal("timed out after 0.3 s", r.queries[3].error)
        assert.is_true(took >= 0.29 and took < 5, "took " .. took)
        assert.is_true(ticks >= 5, "ticks " .. ticks)
        assert.is_true(gap < 0.2, "longest gap " .. gap)
    end)

    it("cancel() interrupts the work and never calls back", function()
        local called = false
        local job = core.sqlite_query({ path = path, timeout = 60, queries = { { sql = LONG } } },
            function() called = true end)
        local t = core.timer(50, function() job:cancel() end)
        local started = core.monotonic()
        core.run() -- ends once the interrupted work is handed back
        local took = core.monotonic() - started
        t:close()
        assert.is_false(called)
        assert.is_true(took < 5, "took " .. took)
        job:cancel()
        local wait = core.timer(100, function() end)
        core.run()
        wait:close()
        assert.is_false(called)
    end)

    it("fails a query of more than max_rows rows, and one over max_bytes", function()
        local r = assert(query({ path = path, max_rows = 2, max_bytes = 1000, queries = {
            { sql = "SELECT id FROM users" },
            { sql = "SELECT id FROM users LIMIT 2" },
            { sql = "SELECT zeroblob(2000) AS z" },
        } }))
        assert.are.equal("more than 2 rows", r.queries[1].error)
        assert.are.same({ { id = 1 }, { id = 2 } }, r.queries[2].rows)
        assert.are.equal("more than 1000 bytes of results", r.queries[3].error)
    end)

    it("reads a WAL database while another connection writes it", function()
        local w = assert(core.db_open(path))
        assert(w:exec("PRAGMA journal_mode = WAL"))
        assert(w:exec("BEGIN IMMEDIATE; INSERT INTO users (name) VALUES ('eve')"))
        local q = rows_of("SELECT count(*) AS n FROM users")
        assert(w:exec("COMMIT"))
        assert.are.same({ { n = 3 } }, q.rows)
        assert.are.same({ { n = 4 } }, rows_of("SELECT count(*) AS n FROM users").rows)
        w:close()
    end)

    it("times out, without hanging, on a database a writer holds locked", function()
        local w = assert(core.db_open(path))
        assert(w:exec("BEGIN EXCLUSIVE; INSERT INTO users (name) VALUES ('eve')"))
        local r = assert(query({ path = path, timeout = 0.3, queries = { { sql = "SELECT 1" } } }))
        assert(w:exec("ROLLBACK"))
        w:close()
        assert.are.equal("timed out after 0.3 s", r.queries[1].error)
    end)

    it("raises on misuse, naming the field", function()
        local cb = function() end
        local function raises(opts, pattern)
            local ok, err = pcall(core.sqlite_query, opts, cb)
            assert.is_false(ok)
            h.has(pattern, err)
        end
        raises({ queries = {} }, "'path'")
        raises({ path = path }, "'queries'")
        raises({ path = path, queries = { "SELECT 1" } }, "[1]")
        raises({ path = path, queries = { { sql = 1 } } }, "[1].sql")
        raises({ path = path, queries = { { sql = "SELECT ?1", params = { {} } } } }, "params")
        raises({ path = path, queries = {}, timeout = 0 }, "'timeout'")
        raises({ path = path, queries = {}, max_rows = -1 }, "'max_rows'")
        assert.has_error(function() core.sqlite_query({ path = path, queries = {} }) end)
    end)
end)
