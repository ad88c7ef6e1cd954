-- Named SQL parameters turned into each engine's placeholders, outside quotes and comments.
local sql = require("phonehome.sources.sql")

describe("phonehome.sources.sql", function()
    it("numbers each name once, in order of first use, per engine", function()
        local text, names = sql.placeholders(
            "SELECT :a, :b, :a FROM t WHERE x > :now_ms", "postgres")
        assert.are.equal("SELECT $1, $2, $1 FROM t WHERE x > $3", text)
        assert.are.same({ "a", "b", "now_ms" }, names)
        text = sql.placeholders("SELECT :a, :b, :a", "sqlite")
        assert.are.equal("SELECT ?1, ?2, ?1", text)
    end)

    it("leaves strings, quoted names, comments and casts alone", function()
        local q = "SELECT ':no', \"a:b\", x::int, 'it''s :no' -- :no\n/* :no */ FROM t "
            .. "WHERE y = :yes"
        local text, names = sql.placeholders(q, "postgres")
        assert.are.equal("SELECT ':no', \"a:b\", x::int, 'it''s :no' -- :no\n/* :no */ FROM t "
            .. "WHERE y = $1", text)
        assert.are.same({ "yes" }, names)
    end)

    it("keeps an unterminated string or comment as it is", function()
        for _, q in ipairs({ "SELECT 'open :x", "SELECT /* open :x", "SELECT \"open :x" }) do
            local text, names = sql.placeholders(q, "sqlite")
            assert.are.equal(q, text)
            assert.are.same({}, names)
        end
    end)

    it("tells a PostgreSQL database from a SQLite file", function()
        assert.is_true(sql.is_postgres("postgresql://u@h/db"))
        assert.is_true(sql.is_postgres("postgres://u@h/db"))
        assert.is_true(sql.is_postgres("host=/run/postgresql dbname=synapse"))
        assert.is_true(sql.is_postgres({ host = "h", dbname = "d" }))
        assert.is_false(sql.is_postgres("/var/lib/synapse/homeserver.db"))
    end)
end)
