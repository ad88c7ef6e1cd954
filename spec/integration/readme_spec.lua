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
end)
