-- The README's example definition works as the README says. #integration
local json = require("phonehome.json")
local h = require("support.helper")

describe("README example #integration", function()
    after_each(h.cleanup)

    it("passes check and builds its report", function()
        local example = h.slurp("README.md"):match("```lua\n(.-)```")
        local dir = h.tmpdir()
        h.write(dir .. "/hello.lua", example)
        local r = h.run({ "check", "--scripts", dir })
        assert.are.equal("", r.err)
        assert.are.equal(0, r.code)
        r = h.run({ "show", "hello", "--scripts", dir, "--data-dir", dir,
                    "--set", "hello.rooms=4" })
        assert.are.equal(0, r.code)
        local out = json.decode(r.out)
        assert.are.equal(4, out.rooms)
        assert.are.equal(json.null, out.version)
        assert.are.equal(h.slurp(dir .. "/hello/hello.uuid"), out.instance)
        assert.matches('^{"instance":"[^"]+","rooms":4,"memory":{"rss":%d+,"total":%d+},'
            .. '"version":null}\n$', r.out)
    end)

    it("declares sources as the README shows them", function()
        local fragment = h.slurp("README.md"):match("### Reading the product.-```lua\n(.-)```")
        local dir = h.tmpdir()
        h.write(dir .. "/demo.lua", 'local F = require("phonehome.fields")\nreturn {\n'
            .. 'name = "demo", description = "d", endpoint = "https://example.org/r",\n'
            .. 'schedule = { first = "1h", interval = "1h" }, optout = { default = "on" },\n'
            .. 'disclosure = { on = "on", off = "off" },\n' .. fragment .. "}\n")
        local r = h.run({ "check", "--scripts", dir })
        assert.are.equal("", r.err)
        assert.are.equal(0, r.code)
        r = h.run({ "docs", "demo", "--scripts", dir })
        assert.matches("### `db` %(sql%)", r.out)
        assert.matches("SELECT COUNT%(%*%) AS n FROM users", r.out)
    end)
end)
