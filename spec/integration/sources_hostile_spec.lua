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
end)
