-- The JSON encoder: exact integers, stable float forms, declared order, [] versus {}.
local json = require("phonehome.json")

local function obj(fields) return { type = "object", fields = fields } end
local function f(name, type, extra)
    local d = extra or {}
    d.name, d.type = name, type
    return d
end

describe("json", function()
    it("keeps integers exact across the whole 64-bit range", function()
        assert.are.equal("9223372036854775807", json.encode(math.maxinteger))
        assert.are.equal("-9223372036854775808", json.encode(math.mininteger))
        assert.are.equal("[1,0,-1]", json.encode({ 1, 0, -1 }))
    end)

    it("writes floats in their shortest exact form, keeping their type", function()
        assert.are.equal("0.1", json.encode(0.1))
        assert.are.equal("64262224.0", json.encode(64262224.0))
        assert.are.equal("1e+300", json.encode(1e300))
        assert.are.equal(0.1 + 0.2, tonumber(json.encode(0.1 + 0.2)))
    end)

    it("refuses numbers JSON cannot carry", function()
        assert.has_error(function() json.encode(0 / 0) end)
        assert.has_error(function() json.encode(math.huge) end)
    end)

    it("escapes strings", function()
        assert.are.equal([["a\"b\\c\n\t\u0001"]], json.encode("a\"b\\c\n\t\1"))
        assert.are.equal('"é"', json.encode("é"))
    end)

    it("writes objects in declaration order", function()
        local decl = obj({ f("zeta", "int"), f("alpha", "string"), f("mid", "bool") })
        assert.are.equal('{"zeta":1,"alpha":"a","mid":true}',
            json.encode({ alpha = "a", mid = true, zeta = 1 }, decl))
    end)

    it("sorts keys everywhere when canonical", function()
        local decl = obj({ f("zeta", "int"),
                           f("alpha", "object", { fields = { f("y", "int"), f("x", "int") } }) })
        assert.are.equal('{"alpha":{"x":2,"y":1},"zeta":1}',
            json.encode({ zeta = 1, alpha = { y = 1, x = 2 } }, decl, true))
    end)

    it("tells empty arrays from empty objects by declaration", function()
        local decl = obj({ f("list", "array", { items = { type = "int" } }),
                           f("dict", "map", { values = { type = "int" } }),
                           f("maybe", "string", { null = true }) })
        assert.are.equal('{"list":[],"dict":{},"maybe":null}',
            json.encode({ list = {}, dict = {} }, decl))
        assert.are.equal("[]", json.encode(json.array()))
        assert.are.equal("{}", json.encode({}))
    end)

    it("sorts map keys and nests declarations", function()
        local decl = obj({ f("m", "map", { values = obj({ f("b", "int"), f("a", "int") }) }) })
        assert.are.equal('{"m":{"x":{"b":2,"a":1},"y":{"b":4,"a":3}}}',
            json.encode({ m = { y = { a = 3, b = 4 }, x = { a = 1, b = 2 } } }, decl))
    end)

    it("decodes integers as integers and null as json.null", function()
        local v = json.decode('{"a":12,"b":1.5,"c":null,"d":[1,2]}')
        assert.are.equal("integer", math.type(v.a))
        assert.are.equal(1.5, v.b)
        assert.are.equal(json.null, v.c)
        assert.are.equal("integer", math.type(v.d[2]))
        local bad, err = json.decode("{nope")
        assert.is_nil(bad)
        assert.is_string(err)
    end)
end)
