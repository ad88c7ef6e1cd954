-- The sources section of a definition: each declaration checked, and shown without
-- credentials.
local definition = require("phonehome.definition")
local sources = require("phonehome.definition.sources")

local function problems(srcs, fields, extra)
    local def = {
        name = "p", description = "d", endpoint = "https://example.org/r",
        schedule = { first = "1h", interval = "1h" }, optout = { default = "on" },
        disclosure = { on = "on", off = "off" }, sources = srcs,
        fields = fields or { { name = "n", type = "int", description = "d", value = 1 } },
    }
    for k, v in pairs(extra or {}) do def[k] = v end
    local out = {}
    definition.check(def, function(path, msg) out[#out + 1] = path .. ": " .. msg end)
    return out, def
end

describe("phonehome.definition.sources", function()
    it("accepts each kind with constant or computed options", function()
        local out, def = problems({
            { name = "db", kind = "sql", description = "d", database = "/x.db",
              queries = { n = "SELECT 1" }, timeout = "2s" },
            { name = "api", kind = "http", description = "d", method = "POST",
              url = function() return "http://x" end, body = { query = "{ a }" } },
            { name = "m", kind = "prometheus", description = "d", url = "http://x/metrics" },
            { name = "f", kind = "file", description = "d", path = "/x", format = "int64le" },
            { name = "y", kind = "yaml", description = "d", path = "/x.yaml" },
        })
        assert.are.same({}, out)
        assert.are.equal(2000, def.sources_by_name.db.timeout)
        assert.are.equal(sources.DEFAULT_TIMEOUT, def.sources_by_name.api.timeout)
    end)

    it("names each mistake with its path", function()
        local out = problems({
            { name = "a", kind = "ftp", description = "d" },
            { name = "b", kind = "sql", description = "d", database = 5 },
            { name = "c", kind = "http", description = "d", url = "http://x", method = "PUT",
              verb = "x" },
            { name = "d", kind = "file", description = "d", path = "/x", format = "mp3" },
            { name = "d", kind = "yaml", path = "/x", timeout = "soon" },
            { name = "bad name", kind = "env", description = "d", path = "/x" },
        }, { { name = "n", type = "int", description = "d", source = "nowhere",
               value = function() return 1 end } })
        local text = table.concat(out, "\n")
        assert.matches("sources.a: kind must be one of env, file, http, ini, json", text, 1, true)
        assert.matches("sources.b.database: option 'database' must be a string or table, got "
            .. "integer 5", text, 1, true)
        assert.matches("sources.b: a sql source needs 'queries'", text, 1, true)
        assert.matches("sources.c.method: method must be \"GET\" or \"POST\"", text, 1, true)
        assert.matches("sources.c.verb: unknown key 'verb' for a http source", text, 1, true)
        assert.matches("sources.d.format: format must be one of", text, 1, true)
        assert.matches("sources.d: source declared twice", text, 1, true)
        assert.matches("sources.d: source has no description", text, 1, true)
        assert.matches("sources.d.timeout:", text, 1, true)
        assert.matches("sources.bad name: a source needs a name", text, 1, true)
        assert.matches("fields.n: unknown source string \"nowhere\"", text, 1, true)
    end)

    it("reads a setting only from a declared config-file source", function()
        local out = problems({ { name = "api", kind = "http", description = "d",
                                 url = "http://x" } }, nil,
            { settings = { { name = "s", type = "bool", description = "d", source = "api",
                             key = "a" } } })
        assert.matches("settings.s: setting source string \"api\" is not a declared config-file",
                       table.concat(out, "\n"), 1, true)
    end)

    it("never shows a credential", function()
        local _, def = problems({
            { name = "db", kind = "sql", description = "d",
              database = "postgresql://synapse:s3cret@db:5432/synapse",
              queries = { n = "SELECT 1" } },
            { name = "pg", kind = "sql", description = "d", queries = { n = "SELECT 1" },
              database = { host = "db", user = "u", password = "s3cret" } },
            { name = "api", kind = "http", description = "d", url = "https://u:s3cret@x/",
              headers = { "Authorization: Bearer s3cret", "Accept: x" },
              auth = { basic = { user = "admin", password = "s3cret" } } },
        })
        local described = sources.describe(def)
        assert.is_nil(require("cjson").encode(described):find("s3cret", 1, true))
        assert.are.equal("postgresql://synapse:***@db:5432/synapse",
                         described[1].options.database)
        assert.are.same({ host = "db", user = "u", password = "(secret)" },
                        described[2].options.database)
        assert.are.same({ "(secret)", "Accept: x" }, described[3].options.headers)
        assert.are.same({ basic = { user = "admin", password = "(secret)" } },
                        described[3].options.auth)
        assert.are.equal("https://u:***@x/", described[3].options.url)
    end)
end)
