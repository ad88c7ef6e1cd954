-- The identity section: file names kept inside the product's own directory, and no two
-- products declaring the same identity file.
local identity = require("phonehome.definition.identity")

describe("identity", function()
    it("takes plain file names only, and names the value it refuses", function()
        for _, ok in ipairs({ "instance.uuid", "system_metrics_report.json", "a-b_c.1" }) do
            assert.is_nil(identity.file_problem("identity.file", ok))
        end
        for _, bad in ipairs({ "../reports.db", "/etc/x", "..", ".", ".hidden", "a/b", "",
                               "a b", "a\nb", string.rep("x", 101) }) do
            local err = identity.file_problem("last_report", bad)
            assert.matches("^last_report string ", err)
            assert.matches("must be a plain file name", err)
        end
        assert.matches("^identity.file integer 3 ", identity.file_problem("identity.file", 3))
    end)

    it("finds products declaring the same identity file", function()
        local a = { name = "a", identity = { file = "instance.uuid" } }
        local b = { name = "b", identity = { file = "b.uuid" } }
        local c = { name = "c", identity = { file = "instance.uuid" } }
        local d = { name = "d" }
        assert.are.same({}, identity.shared({ a, b, d }))
        local pairs_ = identity.shared({ a, b, c, d })
        assert.are.equal(1, #pairs_)
        assert.are.equal(c, pairs_[1][1])
        assert.are.equal(a, pairs_[1][2])
        -- the same script given twice is not two products
        assert.are.same({}, identity.shared({ a, { name = "a", identity = a.identity } }))
    end)
end)
