-- The sandbox's side of sources: env files parsed as systemd and docker read them, and
-- what a failed or undeclared source gives a field.
local sources = require("phonehome.sandbox.sources")

describe("phonehome.sandbox.sources", function()
    it("parses KEY=VALUE files with export, comments and quotes", function()
        local t = assert(sources.parse_env("# c\n\nexport A=1\nB = 'x # y'\nC=\"a \\\"q\\\" b\"\n"
            .. "D=plain # comment\r\nE=\n"))
        assert.are.same({ A = "1", B = "x # y", C = 'a "q" b', D = "plain", E = "" }, t)
    end)

    it("names the line of a malformed env file", function()
        assert.are.same({ nil, "line 2: not NAME=VALUE" }, { sources.parse_env("A=1\nnonsense\n") })
        assert.are.same({ nil, "line 1: unterminated quote" }, { sources.parse_env("A='open\n") })
    end)

    it("gives a field its source's value, or an error naming the source", function()
        local def = { sources_by_name = {
            cfg = { name = "cfg", kind = "env" }, db = { name = "db", kind = "sql" } } }
        local failed = {}
        local proxy = sources.proxy(def, {
            cfg = { ok = true, value = "A=1\n", path = "/etc/app.env" },
            db = { ok = false, error = "connection refused" },
        }, { allowed = function() return { cfg = true, db = true } end,
             failed = function(name) failed[#failed + 1] = name end })
        assert.are.equal("1", proxy.cfg.A)
        assert.has_error(function() return proxy.db end, "source 'db' failed: connection refused")
        assert.has_error(function() return proxy.other end, 'unknown source "other"')
        assert.are.same({ "db" }, failed)
        local narrow = sources.proxy(def, {}, { allowed = function() return {} end })
        assert.has_error(function() return narrow.cfg end,
                         "reads source 'cfg' without declaring it (source = \"cfg\")")
    end)
end)
