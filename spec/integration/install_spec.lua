-- `make install` lays out a tree that runs on its own: the binary finds its library,
-- scripts and parts where the Makefile put them, with no source tree beside it.
-- #integration
local json = require("phonehome.json")
local h = require("support.helper")

describe("make install #integration", function()
    setup(h.lock_bundled)
    teardown(h.unlock_bundled)
    after_each(h.cleanup)

    it("installs a phonehome whose every command works from the installed tree", function()
        local dir = h.tmpdir()
        local prefix = dir .. "/prefix"
        -- a build of its own: PREFIX is compiled in, the tree's build must not change
        local out = h.sh("make -s install PREFIX=" .. h.quote(prefix) .. " BUILD="
            .. h.quote(dir .. "/build") .. " >" .. dir .. "/make.log 2>&1; echo $?")
        assert.are.equal("0", out, h.slurp(dir .. "/make.log"))
        -- every module of the library, sub-packages included
        local installed = h.sh("cd " .. h.quote(prefix .. "/share/phonehome/lib")
            .. " && find . -name '*.lua' | sort")
        local source = h.sh("cd lib && find . -name '*.lua' | sort")
        assert.are.equal(source, installed)
        local bin = prefix .. "/bin/phonehome"
        local function run(args)
            local cmd = { "cd /", "&&", "env -u LD_PRELOAD", h.quote(bin) }
            for _, a in ipairs(args) do cmd[#cmd + 1] = h.quote(a) end
            local d = h.tmpdir()
            local code = h.sh(table.concat(cmd, " ") .. " >" .. d .. "/out 2>" .. d
                .. "/err; echo $?")
            return tonumber(code), h.slurp(d .. "/out"), h.slurp(d .. "/err")
        end
        local code, text, err, _ = run({ "check" })
        assert.are.equal(0, code, err)
        assert.matches(prefix .. "/share/phonehome/scripts/synapse.lua: ok", text, 1, true)
        code, text, err = run({ "show", "coroot", "--data-dir", dir .. "/data" })
        assert.are.equal(0, code, err)
        assert.is_table(json.decode(text).instance)
        -- the parts loaded on first use come from PREFIX/lib/phonehome
        code, _, err = run({ "reports", "--db", dir .. "/none.db" })
        assert.are.equal(1, code)
        assert.matches("no such database", err)
        local pid = h.sh("cd / && env -u LD_PRELOAD " .. h.quote(bin)
            .. " collect --listen 127.0.0.1:0 --db " .. h.quote(dir .. "/r.db")
            .. " >/dev/null 2>" .. h.quote(dir .. "/collect.err") .. " & echo $!")
        local port = h.wait_for(dir .. "/collect.err", "msg=listening addr=127%.0%.0%.1:(%d+)")
        assert.are.equal(200, (h.http("http://127.0.0.1:" .. port .. "/healthz")))
        h.sh("kill " .. pid)
        code, _, err = run({ "run", "coroot", "--once", "--dry-run", "--data-dir",
                             dir .. "/data" })
        assert.are.equal(0, code, err)
        assert.matches("report built, not sent", err)
    end)
end)
