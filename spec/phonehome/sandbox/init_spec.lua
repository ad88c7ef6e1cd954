-- Each product's sandbox: allow-listed globals, memory cap, time limit that a script's
-- own pcall cannot swallow, and plain values copied exactly across the boundary.
local core = require("phonehome.core")
local sandbox = require("phonehome.sandbox")
local h = require("support.helper")

local function open(fields, extra)
    local dir = h.tmpdir()
    local path = h.write(dir .. "/t.lua", h.script("t", fields, extra))
    return sandbox.open(path, { timeout = 0.3, memory = 8 * 1024 * 1024 }), path
end

local function build(p)
    return p:build({ settings = {}, instance_id = core.uuid(), session_id = core.uuid() })
end

local function field(body)
    return '{ name = "x", type = "string", description = "d", value = function(ctx) '
        .. body .. " end },"
end

describe("sandbox", function()
    after_each(h.cleanup)

    it("copies plain values in and out exactly", function()
        local sb = core.sandbox({ path = package.path, entry = "phonehome.sandbox.entry" })
        local ok, t = sb:call("read_data",
            "return { big = 9223372036854775807, small = -9223372036854775807 - 1, f = 0.5, "
            .. "s = 'x\\0y', nested = { { true, false } }, [3] = 'three' }", "@data")
        assert.is_true(ok)
        assert.are.same({ big = math.maxinteger, small = math.mininteger, f = 0.5, s = "x\0y",
                          nested = { { true, false } }, [3] = "three" }, t)
        assert.are.equal("integer", math.type(t.big))
        sb:close()
    end)

    it("refuses to hand out a function", function()
        local sb = core.sandbox({ path = package.path, entry = "phonehome.sandbox.entry" })
        local ok, err = sb:call("read_data", "return { f = function() end }", "@data")
        assert.is_false(ok)
        assert.matches("cannot leave the sandbox: function", err)
    end)

    it("has no function the caller did not export", function()
        local sb = core.sandbox({ path = package.path, entry = "phonehome.sandbox.entry" })
        assert.has_error(function() sb:call("os_execute") end,
            "sandbox has no function 'os_execute'")
        sb:close()
        assert.has_error(function() sb:call("load") end, "sandbox is closed")
    end)

    it("rejects bad limits", function()
        assert.has_error(function() core.sandbox({ path = "", entry = "x", memory = 10 }) end)
        assert.has_error(function() core.sandbox({ path = "", entry = "x", timeout = -1 }) end)
        assert.has_error(function()
            core.sandbox({ path = package.path, entry = "no.such.module" })
        end)
    end)

    for _, name in ipairs({ "io", "debug", "dofile", "loadfile", "print", "package",
                            "collectgarbage" }) do
        it("keeps " .. name .. " from scripts", function()
            local p = assert(open(field("return tostring(" .. name .. ")")))
            local json, errors = build(p)
            assert.is_nil(json)
            assert.matches("t%.lua:%d+: field 'x': .*undeclared global '" .. name .. "'", errors[1])
        end)
    end

    for _, name in ipairs({ "os.execute", "os.getenv", "os.exit", "os.remove", "string.dump" }) do
        it("leaves " .. name .. " out of the libraries scripts get", function()
            local p = assert(open(field("return tostring(" .. name .. ")")))
            assert.are.equal('{"x":"nil"}', build(p))
        end)
    end

    it("does not let a script change the library its report is encoded with", function()
        local p = assert(open(field("require('phonehome.json').encode = function() return '{}' end "
            .. "return 'x'")))
        local _, errors = build(p)
        assert.matches("module phonehome.json is read%-only %(encode%)", errors[1])
        -- rawset reaches only the script's own view of the module
        p = assert(open(field("rawset(require('phonehome.json'), 'encode', "
            .. "function() return '{}' end) return 'x'")))
        assert.are.equal('{"x":"x"}', build(p))
    end)

    it("lets scripts require only the library's pure helpers", function()
        local p = assert(open(field("return type(require('phonehome.stats').summary)")))
        assert.are.equal('{"x":"function"}', build(p))
        p = assert(open(field("return require('phonehome.core')")))
        local _, errors = build(p)
        assert.matches("module 'phonehome.core' is not available to scripts", errors[1])
    end)

    it("errors on writing a global", function()
        local p = assert(open(field("leak = 1 return 'x'")))
        local _, errors = build(p)
        assert.matches("assignment to undeclared global 'leak'", errors[1])
    end)

    it("loads text but never bytecode", function()
        local p = assert(open(field("return load('return \"ok\"')()")))
        assert.are.equal('{"x":"ok"}', build(p))
        p = assert(open(field("return tostring(load('\\27Lua', 'b', 'b'))")))
        local _, errors = build(p)
        assert.matches("only text chunks", errors[1])
    end)

    it("does not let a script reach the string metatable", function()
        local p = assert(open(field("return tostring(getmetatable(''))")))
        assert.are.equal('{"x":"false"}', build(p))
    end)

    it("kills a loop even when the script catches the error", function()
        local p = assert(open(field("for _ = 1, 100 do pcall(function() while true do end end) end "
            .. "return 'y'")))
        local t0 = core.monotonic()
        local json, errors = build(p)
        assert.is_nil(json)
        assert.matches("t%.lua:%d+: field 'x': script exceeded its time limit of 300 ms", errors[1])
        assert.is_true(core.monotonic() - t0 < 2)
    end)

    it("caps memory, and the state works again afterwards", function()
        local p = assert(open('{ name = "x", type = "int", description = "d", '
            .. 'value = function(ctx) if ctx.settings.big then '
            .. 'local t = {} for i = 1, 1e8 do t[i] = i end end return 1 end },',
            'settings = { { name = "big", type = "bool", default = false, description = "d" } },'))
        local json, errors = p:build({ settings = { big = true }, instance_id = "i",
                                       session_id = "s" })
        assert.is_nil(json)
        assert.matches("field 'x': script exceeded its memory limit of 8192 KiB", errors[1])
        assert.are.equal('{"x":1}',
            p:build({ settings = { big = false }, instance_id = "i", session_id = "s" }))
        assert.is_true(p.sandbox:memory() < 8 * 1024 * 1024)
    end)

    it("leaves other products working when one is killed", function()
        local bad = assert(open(field("while true do end")))
        local good = assert(open(field("return 'fine'")))
        assert.is_nil((build(bad)))
        assert.are.equal('{"x":"fine"}', build(good))
    end)
end)
