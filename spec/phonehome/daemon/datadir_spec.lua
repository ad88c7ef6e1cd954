-- The data directory's rules that need no daemon: which schedule states are valid, which
-- file names a script may give, and where each product's files go.
local core = require("phonehome.core")
local datadir = require("phonehome.daemon.datadir")
local h = require("support.helper")
local log = require("phonehome.base.log")

describe("datadir", function()
    local lines
    before_each(function()
        lines = {}
        log.out = { write = function(_, ...) lines[#lines + 1] = table.concat({ ... }) end,
                    flush = function() end }
    end)
    after_each(function()
        log.out = io.stderr
        h.cleanup()
    end)

    it("takes a state file whose fields have their types and ranges", function()
        local s = assert(datadir.valid_state('{"last_sent":1700000000.5,"next_due":1700003600,'
            .. '"reloads":2,"last_result":"delivered","process":{"pid":7,"start_time":1.5,'
            .. '"time":1700000000,"cpu":0.25},"from_a_later_version":true}'))
        assert.are.equal(1700000000.5, s.last_sent)
        assert.are.equal(2, s.reloads)
        assert.are.equal(7, s.process.pid)
        assert.is_nil(s.from_a_later_version)
        assert.are.same({}, datadir.valid_state("{}"))
        assert.are.same({}, datadir.valid_state('{"last_sent":null}'))
    end)

    it("refuses a state file of the wrong shape, saying which field", function()
        local cases = {
            { '{"last_sent":"abc"}', 'last_sent is "abc"' },
            { '{"next_due":1e999}', "next_due is inf" },
            { '{"next_due":1e300}', "next_due is 1e+300" },
            { '{"last_built":-1}', "last_built is -1" },
            { '{"reloads":1.5}', "reloads is 1.5" },
            { '{"reloads":-1}', "reloads is -1" },
            { '{"last_result":{}}', "last_result is a table" },
            { '{"reload_error":false}', "reload_error is false" },
            { '{"process":{"pid":"x"}}', "process is a table" },
            { '{"process":7}', "process is 7" },
            { "[1,2]", "not a JSON object" },
            { "[]", "not a JSON object" },
            { '"x"', "not a JSON object" },
            { "null", "not a JSON object" },
            { "{", "not JSON" },
        }
        for _, case in ipairs(cases) do
            local s, err = datadir.valid_state(case[1])
            assert.is_nil(s, case[1])
            assert.is_truthy(err:find(case[2], 1, true), err)
        end
    end)

    it("reads a state file it cannot read as not valid, and sets it aside", function()
        local dir = h.tmpdir()
        assert.are.same({}, datadir.read_state(dir, "p"))   -- none yet: nothing wrong
        core.mkdir(dir .. "/p/state.json")
        local state, err, file = datadir.read_state(dir, "p")
        assert.are.same({}, state)
        assert.matches("cannot be read: .*Is a directory", err)
        assert.are.equal(dir .. "/p/state.json", file)
        assert.are.same({}, datadir.load_state(dir, "p"))
        assert.is_false(core.exists(dir .. "/p/state.json"))
        assert.matches('product=p msg="state file is not valid; set aside"', lines[1])
        assert.is_true(core.isdir(lines[1]:match("moved_to=(%S+)")))
    end)

    it("refuses file names that are the host's own in the product's directory", function()
        assert.are.same({}, datadir.problems({ name = "p" }))
        assert.are.same({}, datadir.problems({ name = "coroot",
                                               identity = { file = "instance.uuid" } }))
        assert.are.same({}, datadir.problems({ name = "m",
                                               last_report = "system_metrics_report.json" }))
        local cases = {
            { { identity = { file = "state.json" } }, 'identity.file "state.json"' },
            { { identity = { file = "state.json.bad-1" } }, 'identity.file "state.json.bad-1"' },
            { { last_report = "spool" }, 'last_report "spool"' },
            { { last_report = "x.tmp42" }, 'last_report "x.tmp42"' },
            { { last_report = "id", identity = { file = "id" } }, 'last_report "id"' },
            { { last_report = datadir.ID_FILE }, 'last_report "' .. datadir.ID_FILE .. '"' },
            { { identity = { file = datadir.LAST_FILE } },
              'identity.file "' .. datadir.LAST_FILE .. '"' },
        }
        for _, case in ipairs(cases) do
            case[1].name = "p"
            local out = datadir.problems(case[1])
            assert.are.equal(1, #out)
            assert.is_truthy(out[1]:find(case[2], 1, true), out[1])
        end
    end)

    it("keeps each product's files in its own directory, and moves the old layout's once",
        function()
        local dir = h.tmpdir()
        local def = { name = "c", identity = { file = "instance.uuid" } }
        local id = core.uuid()
        h.write(dir .. "/instance.uuid", id .. "\n")
        h.write(dir .. "/reports.db", "db")
        assert.are.equal(id, datadir.existing_instance_id(dir, def))
        datadir.migrate(dir, def)
        assert.are.equal(id, datadir.instance_id(dir, def))
        assert.are.equal(id .. "\n", h.slurp(dir .. "/c/instance.uuid"))
        assert.is_false(core.exists(dir .. "/instance.uuid"))
        assert.matches('product=c msg="moved to the product\'s directory"', lines[1])
        -- a script's name that was the host's at the top is never taken over
        local other = { name = "o", identity = { file = "x.id" }, last_report = "reports.db" }
        h.write(dir .. "/x.id", core.uuid())
        datadir.migrate(dir, other)
        assert.are.equal("db", h.slurp(dir .. "/reports.db"))
        assert.is_true(core.exists(dir .. "/x.id"))
        assert.is_nil(datadir.existing_instance_id(dir, other))
    end)
end)
