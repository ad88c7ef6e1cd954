-- core.pg_query against a real PostgreSQL 15 on 127.0.0.1: typed rows, a read-only session,
-- each query failing alone, connection failures without the password, the job's deadline
-- with the loop serving timers meanwhile, cancel, and the limits. #integration
local core = require("phonehome.core")
local h = require("support.helper")
local postgres = require("support.postgres")

-- Runs the loop until fn(done)'s job calls done(...) or 20 s pass: done's arguments.
-- Other jobs may still be running then.
local function until_done(fn)
    local got
    local deadline = core.timer(20000, function() core.stop() end)
    fn(function(...)
        got = table.pack(...)
        core.stop()
    end)
    core.run()
    deadline:close()
    return assert(got, "no callback within 20 s")
end

-- One job to its callback: result, message.
local function query(opts)
    local got = until_done(function(done) core.pg_query(opts, done) end)
    return got[1], got[2]
end

-- The result's queries, with the opts of one job: url and queries ({ sql, params }).
local function results(pg, queries, extra)
    local opts = { conninfo = pg.url, queries = queries }
    for k, v in pairs(extra or {}) do opts[k] = v end
    local res, err = query(opts)
    assert(res, err)
    return res.queries, res
end

-- Runs the loop for ms milliseconds.
local function spin(ms)
    local t = core.timer(ms, function() core.stop() end)
    core.run()
    t:close()
end

-- How many backends run a statement that holds marker, as the server sees them now.
local function running(pg, marker)
    local res = assert(query({ conninfo = pg.url, queries = { {
        sql = "SELECT count(*) AS n FROM pg_stat_activity WHERE query LIKE $1 AND pid <> "
            .. "pg_backend_pid()", params = { "%" .. marker .. "%" } } } }))
    return res.queries[1].rows[1].n
end

-- Waits (up to 5 s) until no backend runs a statement that holds marker.
local function wait_gone(pg, marker)
    for _ = 1, 50 do
        if running(pg, marker) == 0 then return end
        spin(100)
    end
    error("the statement " .. marker .. " still runs")
end

describe("core.pg_query #integration", function()
    local pg

    setup(function()
        pg = postgres.start()
        pg.psql([[
CREATE TABLE users (id int PRIMARY KEY, name text, x bigint, score float8, ok boolean,
                    amount numeric, note text, big int8, small int2);
INSERT INTO users VALUES
    (1, 'ann', 1700000001, 1.5, true, 12.25, 'first', 9007199254740993, 7),
    (2, 'bob', 1600000000, -2, false, 0, NULL, -1, -7),
    (3, 'cy', 1800000000, 0.25, NULL, NULL, 'third', 0, 0);
]])
    end)

    teardown(function()
        if pg then pg.stop() end
        h.cleanup()
    end)

    it("returns counts and rows typed by column, the server's version", function()
        local q, res = results(pg, {
            { sql = "SELECT count(*) AS n FROM users" },
            { sql = "SELECT id, name, x, score, ok, amount, note, big, small, 2::oid AS o,"
                .. " 1.5::float4 AS f4, DATE '2024-01-02' AS d FROM users ORDER BY id" },
        })
        assert.is_true(math.type(res.server_version) == "integer")
        assert.is_true(res.server_version >= 150000 and res.server_version < 160000)
        assert.are.same({ columns = { "n" }, rows = { { n = 3 } } }, q[1])
        assert.are.equal(math.tointeger(3), q[1].rows[1].n)
        assert.are.equal("integer", math.type(q[1].rows[1].n))
        assert.are.same({ "id", "name", "x", "score", "ok", "amount", "note", "big", "small",
                          "o", "f4", "d" }, q[2].columns)
        local ann = q[2].rows[1]
        assert.are.same({ id = 1, name = "ann", x = 1700000001, score = 1.5, ok = true,
                          amount = 12.25, note = "first", big = 9007199254740993, small = 7,
                          o = 2, f4 = 1.5, d = "2024-01-02" }, ann)
        for _, k in ipairs({ "id", "x", "big", "small", "o" }) do
            assert.are.equal("integer", math.type(ann[k]), k)
        end
        for _, k in ipairs({ "score", "amount", "f4" }) do
            assert.are.equal("float", math.type(ann[k]), k)
        end
        assert.are.equal(false, q[2].rows[2].ok)
        assert.are.equal("float", math.type(q[2].rows[2].score))
        assert.are.equal(3, #q[2].rows)
    end)

    it("leaves NULL out of a row", function()
        local q = results(pg, {
            { sql = "SELECT id, note, ok, amount FROM users WHERE id >= 2 ORDER BY id" },
            { sql = "SELECT NULL::int AS z" },
        })
        assert.are.same({ { id = 2, ok = false, amount = 0 }, { id = 3, note = "third" } },
            q[1].rows)
        assert.are.same({ columns = { "z" }, rows = { {} } }, q[2])
    end)

    it("sends parameters as text for the server to type", function()
        local q = results(pg, {
            { sql = "SELECT count(*) AS n FROM users WHERE x > $1 AND name <> $2",
              params = { 1700000000, "cy" } },
            { sql = "SELECT $1::int + 1 AS a, $2::text AS b, $3::bool AS c, $4::float8 AS d,"
                .. " $5::bool AS e, $6::numeric::text AS f, $7::float8 AS g",
              params = { 41, "x y", true, 0.1, false, 0.1, 1 / 3 } },
            { sql = "SELECT count(*) AS n FROM users WHERE name = $1",
              params = { "'; DROP TABLE users; --" } },
        })
        assert.are.same({ { n = 1 } }, q[1].rows)
        assert.are.same({ { a = 42, b = "x y", c = true, d = 0.1, e = false, f = "0.1",
                            g = 1 / 3 } }, q[2].rows)
        assert.are.same({ { n = 0 } }, q[3].rows)
    end)

    it("runs a read-only session: a write fails alone with PostgreSQL's own error", function()
        local q = results(pg, {
            { sql = "INSERT INTO users (id, name) VALUES (9, 'eve')" },
            { sql = "SELECT 1 AS one" },
            { sql = "CREATE TABLE t2 (x int)" },
            { sql = "UPDATE users SET name = 'x'" },
            { sql = "SELECT count(*) AS n FROM users WHERE name <> 'x'" },
            { sql = "SELECT current_setting('application_name') AS app,"
                .. " current_setting('default_transaction_read_only') AS ro" },
        })
        assert.are.same({ error = "cannot execute INSERT in a read-only transaction" }, q[1])
        assert.are.same({ columns = { "one" }, rows = { { one = 1 } } }, q[2])
        assert.are.same({ error = "cannot execute CREATE TABLE in a read-only transaction" },
            q[3])
        assert.are.same({ error = "cannot execute UPDATE in a read-only transaction" }, q[4])
        assert.are.same({ { n = 3 } }, q[5].rows)
        assert.are.same({ { app = "phonehome", ro = "on" } }, q[6].rows)
    end)

    it("fails only the query that names a missing table, or holds two statements", function()
        local q = results(pg, {
            { sql = "SELECT * FROM nope" },
            { sql = "SELECT 2 AS two" },
            { sql = "SELECT 1; SELECT 2" },
            { sql = "SELECT $1::int AS v", params = { "not a number" } },
            { sql = "SELECT 3 AS three" },
        })
        assert.are.same({ error = 'relation "nope" does not exist' }, q[1])
        assert.are.same({ { two = 2 } }, q[2].rows)
        h.has("multiple commands", q[3].error)
        h.has("invalid input syntax for type integer", q[4].error)
        assert.are.same({ { three = 3 } }, q[5].rows)
    end)

    it("fails COPY, which it does not read, and goes on", function()
        local q = results(pg, {
            { sql = "COPY (SELECT generate_series(1, 1000)) TO STDOUT" },
            { sql = "SELECT 4 AS four" },
        })
        h.has("COPY", q[1].error)
        assert.are.same({ { four = 4 } }, q[2].rows)
    end)

    it("connects with a table of libpq keywords, an integer port, a passfile", function()
        local q = results(pg, { { sql = "SELECT current_user AS u" } })
        assert.are.same({ { u = pg.user } }, q[1].rows)
        local conninfo = { host = pg.host, port = pg.port, dbname = pg.dbname, user = pg.user,
                           password = pg.password, sslmode = "disable" }
        local res = assert(query({ conninfo = conninfo, queries = { { sql = "SELECT 1 AS x" } } }))
        assert.are.same({ { x = 1 } }, res.queries[1].rows)
        local passfile = h.tmpdir() .. "/pgpass"
        h.write(passfile, string.format("%s:%d:%s:%s:%s\n", pg.host, pg.port, pg.dbname,
            pg.user, pg.password))
        h.sh("chmod 600 " .. h.quote(passfile))
        conninfo.password = nil
        res = assert(query({ conninfo = conninfo, passfile = passfile,
                             queries = { { sql = "SELECT 1 AS x" } } }))
        assert.are.same({ { x = 1 } }, res.queries[1].rows)
    end)

    it("merges the options given with its own", function()
        local q = results(pg, { { sql = "SELECT current_setting('search_path') AS p,"
            .. " current_setting('default_transaction_read_only') AS ro,"
            .. " current_setting('statement_timeout') AS st" } }, { timeout = 3 })
        assert.are.same({ { p = "\"$user\", public", ro = "on", st = "3s" } }, q[1].rows)
        local res = assert(query({ conninfo = pg.url .. "?options=-c%20search_path%3Dfoo",
            queries = { { sql = "SELECT current_setting('search_path') AS p,"
                .. " current_setting('default_transaction_read_only') AS ro" } } }))
        assert.are.same({ { p = "foo", ro = "on" } }, res.queries[1].rows)
        local conninfo = { host = pg.host, port = pg.port, dbname = pg.dbname, user = pg.user,
                           password = pg.password, options = "-c search_path=bar" }
        res = assert(query({ conninfo = conninfo, statement_timeout_ms = 1234,
            queries = { { sql = "SELECT current_setting('search_path') AS p,"
                .. " current_setting('statement_timeout') AS st" } } }))
        assert.are.same({ { p = "bar", st = "1234ms" } }, res.queries[1].rows)
    end)

    it("fails the callback on a wrong password, without the password", function()
        for _, pw in ipairs({ "wrong-Pw-77", pg.password .. "x" }) do
            local url = string.format("postgresql://%s:%s@127.0.0.1:%d/%s", pg.user, pw,
                pg.port, pg.dbname)
            local res, err = query({ conninfo = url, queries = { { sql = "SELECT 1" } } })
            assert.is_nil(res)
            h.has('password authentication failed for user "' .. pg.user .. '"', err)
            assert.is_nil(err:find(pw, 1, true), err)
            assert.is_nil(err:find("%s$"), "not trimmed: " .. err)
        end
    end)

    it("fails the callback on a refused connection, a bad conninfo", function()
        local res, err = query({ conninfo = "postgresql://u:hidden-pw@127.0.0.1:1/db",
                                 queries = { { sql = "SELECT 1" } } })
        assert.is_nil(res)
        h.has("Connection refused", err)
        assert.is_nil(err:find("hidden-pw", 1, true))
        res, err = query({ conninfo = "postgresql://u:hid%zzden@127.0.0.1:1/db",
                           queries = { { sql = "SELECT 1" } } })
        assert.is_nil(res)
        h.has("invalid percent-encoded token", err)
        assert.is_nil(err:find("hid", 1, true), err)
        res, err = query({ conninfo = { host = "127.0.0.1", port = 1, sslmode = "sometimes",
                                        password = "hidden-pw" }, queries = {} })
        assert.is_nil(res)
        h.has("sslmode", err)
    end)

    it("fails a query at statement_timeout_ms, and goes on", function()
        local q = results(pg, { { sql = "SELECT pg_sleep(5)" }, { sql = "SELECT 5 AS five" } },
            { statement_timeout_ms = 100 })
        assert.are.same({ error = "canceling statement due to statement timeout" }, q[1])
        assert.are.same({ { five = 5 } }, q[2].rows)
    end)

    it("times a hanging job out, cancels it on the server, serves timers meanwhile", function()
        local marker = "hang_" .. math.random(1e9)
        -- gaps from 0.2 s on, when the query hangs: connecting (SCRAM's hashing) is libpq's
        -- computation, not a wait
        local start = core.monotonic()
        local ticks, gap, last, stop = 0, 0, start, false
        local function tick()
            local now = core.monotonic()
            if last >= start + 0.2 then
                gap = math.max(gap, now - last)
                ticks = ticks + 1
            end
            last = now
            if not stop then core.timer(10, tick) end
        end
        core.timer(10, tick)
        local got = until_done(function(done)
            -- the server's own statement timeout would not end it: the cancel must
            core.pg_query({ conninfo = pg.url, timeout = 0.5, statement_timeout_ms = 60000,
                            queries = {
                { sql = "SELECT 1 AS one" },
                { sql = "SELECT pg_sleep(30) /* " .. marker .. " */" } } }, function(...)
                stop = true
                done(...)
            end)
        end)
        local elapsed = core.monotonic() - start
        assert.are.same({ n = 2, nil, "timed out after 0.5 s" }, got)
        assert.is_true(elapsed >= 0.45 and elapsed < 10, tostring(elapsed))
        assert.is_true(ticks >= 5, tostring(ticks))
        -- a loop blocked in libpq would show the whole hang as one gap
        assert.is_true(gap < 0.25, "longest gap between ticks: " .. gap)
        wait_gone(pg, marker)
    end)

    it("cancel() ends a job with no callback, and the query on the server", function()
        local called = false
        local job = core.pg_query({ conninfo = pg.url, queries = { { sql = "SELECT 1" } } },
            function() called = true end)
        job:cancel()
        job:cancel()
        spin(300)
        assert.is_false(called)
        local marker = "cancelled_" .. math.random(1e9)
        job = core.pg_query({ conninfo = pg.url, timeout = 60, queries = {
            { sql = "SELECT pg_sleep(30) /* " .. marker .. " */" } } },
            function() called = true end)
        for _ = 1, 100 do
            spin(50)
            if running(pg, marker) == 1 then break end
        end
        assert.are.equal(1, running(pg, marker))
        job:cancel()
        wait_gone(pg, marker)
        spin(100)
        assert.is_false(called)
    end)

    it("fails a query of more than max_rows rows or over max_bytes, and goes on", function()
        local q = results(pg, {
            { sql = "SELECT generate_series(1, 11) AS i" },
            { sql = "SELECT generate_series(1, 10) AS i" },
            { sql = "SELECT repeat('x', 300) AS s" },
            { sql = "SELECT repeat('y', 150) AS s" },
            { sql = "SELECT repeat('z', 100) AS s" },
        }, { max_rows = 10, max_bytes = 420 })
        assert.are.same({ error = "more than 10 rows" }, q[1])
        assert.are.equal(10, #q[2].rows)   -- 11 bytes: the 10 rows of q[1] are not counted
        assert.are.equal(300, #q[3].rows[1].s)
        assert.are.same({ error = "results over 420 bytes" }, q[4])
        assert.are.equal(100, #q[5].rows[1].s)
    end)

    it("raises on misuse, naming the field", function()
        local function raised(opts)
            local ok, err = pcall(core.pg_query, opts, function() end)
            assert.is_false(ok)
            return tostring(err)
        end
        h.has("bad field 'conninfo' in argument #1 (string without NUL bytes or table expected,"
            .. " got number)", raised({ conninfo = 5, queries = {} }))
        h.has("bad field 'conninfo' in argument #1 (string without NUL bytes or table expected,"
            .. " got string)", raised({ conninfo = "host=x\0", queries = {} }))
        h.has("bad field 'queries'", raised({ conninfo = "x" }))
        h.has("bad field 'queries' in argument #1 (params[2] of query 1: string without NUL "
            .. "bytes, number or boolean expected, got table)",
            raised({ conninfo = "x", queries = { { sql = "s", params = { 1, {} } } } }))
        h.has("(params[1] of query 2: string without NUL bytes, number or boolean expected, "
            .. "got string)",
            raised({ conninfo = "x",
                     queries = { { sql = "s" }, { sql = "s", params = { "a\0b" } } } }))
        h.has("(sql of query 1: string without NUL bytes expected, got number)",
            raised({ conninfo = "x", queries = { { sql = 5 } } }))
        h.has("(sql of query 1: string without NUL bytes expected, got string)",
            raised({ conninfo = "x", queries = { { sql = "SELECT 1\0; DROP TABLE users" } } }))
        h.has("bad field 'timeout'", raised({ conninfo = "x", queries = {}, timeout = 0 }))
        h.has("bad field 'conninfo' in argument #1 (port: string without NUL bytes or integer "
            .. "expected, got boolean)", raised({ conninfo = { port = true }, queries = {} }))
        h.has("(password: string without NUL bytes or integer expected, got string)",
            raised({ conninfo = { password = "a\0b" }, queries = {} }))
        h.has("bad field 'passfile' in argument #1 (holds a NUL byte)",
            raised({ conninfo = "", passfile = "/x\0", queries = {} }))
        h.has("bad argument #2", select(2, pcall(core.pg_query, { conninfo = "x", queries = {} })))
    end)
end)
