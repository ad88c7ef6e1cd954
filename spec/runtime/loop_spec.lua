-- The directory watch at the C boundary: it says when the directory it watches is removed
-- or replaced, after which it sees nothing more.
local core = require("phonehome.core")
local h = require("support.helper")

-- Runs the loop until fn's watch reports a failure or 5 s pass: the events seen.
local function watch_while(dir, change)
    local seen, w = {}, nil
    w = assert(core.watch(dir, function(name, kind)
        seen[#seen + 1] = { name = name, kind = kind }
        if name == nil then
            w:close()
            core.stop()
        end
    end))
    change()
    local deadline = core.timer(5000, function() core.stop() end)
    core.run()
    deadline:close()
    w:close()
    return seen
end

describe("core.watch", function()
    after_each(h.cleanup)

    for _, case in ipairs({
        { "removed", "rm -rf %s" },
        { "replaced at once", "rm -rf %s && mkdir %s" },
        { "renamed away", "mv %s %s.old" },
    }) do
        it("reports the directory " .. case[1], function()
            local dir = h.tmpdir() .. "/w"
            core.mkdir(dir)
            h.write(dir .. "/a.lua", "x")
            local seen = watch_while(dir, function()
                h.sh(case[2]:gsub("%%s", h.quote(dir)))
            end)
            local last = seen[#seen]
            assert.is_nil(last.name)
            assert.are.equal("the directory was removed or replaced", last.kind)
        end)
    end

    it("refuses a directory that does not exist, naming it", function()
        local ok, err = core.watch(h.tmpdir() .. "/nope", function() end)
        assert.is_nil(ok)
        h.has("nope", err)
    end)
end)
