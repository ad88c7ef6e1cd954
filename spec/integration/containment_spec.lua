-- Limits nothing in a script escapes: one long C call, a coroutine, a finalizer, a graph
-- of shared tables, an error that cannot be printed, in a script or a --config file, under
-- show, check and the daemon. Each used to hang phonehome or take it down. #integration
local core = require("phonehome.core")
local h = require("support.helper")

-- A scripts directory holding product "t" whose field x is computed by body, and whose
-- extra top-level text is extra.
local function product(body, extra)
    local dir = h.tmpdir()
    h.write(dir .. "/t.lua", h.script("t", '{ name = "x", type = "string", description = "d", '
        .. "value = function() " .. body .. " end },", extra))
    return dir
end

-- What a script may run for a long time inside one call of a C function.
local long_calls = {
    ["string.find with many .-"] = 'return tostring(string.find(string.rep("a", 5000), '
        .. 'string.rep(".-", 20) .. "b"))',
    ["string.match"] = 'return tostring(string.match(string.rep("a", 5000), '
        .. 'string.rep("(.-)", 20) .. "b"))',
    ["string.gmatch"] = 'for m in string.gmatch(string.rep("a", 5000), '
        .. 'string.rep(".-", 20) .. "b") do return m end return "none"',
    ["string.gsub"] = 'return (string.gsub(string.rep("a", 5000), string.rep(".-", 20) '
        .. '.. "b", ""))',
    ["a coroutine resumed from a pcall loop"] = 'local co = coroutine.wrap(function() '
        .. 'while true do end end) while true do pcall(co) end',
    ["a finalizer that never ends"] = 'for _ = 1, 1e6 do setmetatable({}, { __gc = function() '
        .. 'while true do end end }) end return "x"',
}

describe("limits nothing escapes #integration", function()
    setup(h.lock_bundled)
    teardown(h.unlock_bundled)
    after_each(h.cleanup)

    for what, body in pairs(long_calls) do
        it("stop " .. what .. " at the time limit, in show and check", function()
            local dir = product(body)
            local t0 = core.monotonic()
            local r = h.run({ "show", "t", "--scripts", dir, "--data-dir", dir .. "/data" }, nil,
                            60)
            assert.are.equal(1, r.code, r.err)
            assert.matches("t%.lua:%d+: field 'x': script exceeded its time limit of 1000 ms",
                           r.err)
            r = h.run({ "check", "--scripts", dir }, nil, 60)
            assert.are.equal(1, r.code, r.err)
            assert.matches("script exceeded its time limit", r.err)
            -- two builds and one load, each held to about a second
            assert.is_true(core.monotonic() - t0 < 30)
        end)
    end

    it("stop a script whose loading never ends, and its finalizers at exit", function()
        local dir = product('return "x"', 'version = (function() setmetatable({}, { __gc = '
            .. 'function() while true do end end }) string.find(string.rep("a", 5000), '
            .. 'string.rep(".-", 20) .. "b") return "1" end)(),')
        local r = h.run({ "check", "--scripts", dir }, nil, 60)
        assert.are.equal(1, r.code)
        assert.matches("t%.lua: script exceeded its time limit of 1000 ms", r.err)
    end)

    it("refuse a graph of shared tables instead of copying it as a tree", function()
        local dir = product('return "x"', 'settings = { { name = "m", type = "map", '
            .. 'description = "d", default = (function() local t = {} for _ = 1, 40 do '
            .. 't = { a = t, b = t } end return t end)() } },')
        local r = h.run({ "check", "--scripts", dir }, nil, 60)
        assert.are.equal(1, r.code)
        assert.matches("a table appears twice %(shared or cyclic%)", r.err)
        r = h.run({ "docs", "t", "--scripts", dir }, nil, 60)
        assert.are.equal(1, r.code)
    end)

    it("report an error object that cannot be printed, in a field and at load", function()
        local bad = "setmetatable({}, { __tostring = function() return {} end })"
        local dir = product("error(" .. bad .. ")")
        local r = h.run({ "show", "t", "--scripts", dir, "--data-dir", dir .. "/data" }, nil, 60)
        assert.are.equal(1, r.code)
        assert.matches("field 'x': %(error object is a table value%)", r.err)
        assert.not_matches("internal error", r.err)
        dir = product('return "x"', "version = error(" .. bad .. "),")
        r = h.run({ "check", "--scripts", dir }, nil, 60)
        assert.are.equal(1, r.code)
        assert.matches("t%.lua: %(error object is a table value%)", r.err)
    end)

    it("hold --config files to the same limits", function()
        local dir = h.tmpdir()
        -- no library in scope, but strings keep their methods
        local config = h.write(dir .. "/config.lua",
            'local _ = ("a"):rep(5000):find((".-"):rep(20) .. "b") return {}')
        local r = h.run({ "show", "coroot", "--config", config, "--data-dir", dir }, nil, 60)
        assert.are.equal(1, r.code)
        assert.matches("config%.lua: script exceeded its time limit", r.err)
    end)

    it("keep the daemon, its other products and its signals going past a stuck product",
       function()
        local dir = product(long_calls["string.find with many .-"])
        h.write(dir .. "/b.lua", h.script("b", '{ name = "n", type = "int", description = "d", '
            .. "value = function() return 1 end },"))
        local ep = h.endpoint("201")
        -- a report every 0.1 s of each product; t's builds each take a second to be killed
        local d = h.spawn({ "run", "--scripts", dir, "--data-dir", h.tmpdir(), "--endpoint",
                            ep.url, "--time-scale", "36000" })
        h.wait_for(d.err, "product=t msg=\"report not built\"", 30)
        local before = #ep.requests()
        h.wait_for(d.err, "product=t msg=\"report not built\".*product=t msg=\"report not built\"",
                   30)
        -- b went on sending while t was being killed
        assert.is_true(#ep.requests() > before)
        h.sh("kill -TERM " .. d.pid)
        assert.are.equal(0, h.exit_code(d, 10))
        ep.stop()
        for _, r in ipairs(ep.requests()) do assert.are.equal("/v1/report/b", r.path) end
    end)
end)
