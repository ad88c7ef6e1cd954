-- The commands of phonehome, one module each beside this one: each owns its arguments,
-- its options and their help, and its body (LuaRocks' cmd/*.lua). A command module
-- declares at its top and loads what it runs only when it runs, so that `show` never
-- loads the daemon or the collector. cli.lua parses and dispatches with what is here.
local M = {}

-- In the order --help lists them.
M.names = { "run", "status", "show", "docs", "check", "collect", "reports" }

-- Options every command takes: "value" takes an argument, "list" one each time it is
-- given, "flag" none.
M.common = { scripts = "value", set = "list", config = "value", ["data-dir"] = "value" }
M.common_help = [[
  --scripts DIR      product scripts (default: the bundled scripts/)
  --data-dir DIR     where instance ids are kept (default: $STATE_DIRECTORY,
                     /var/lib/phonehome as root, else $XDG_STATE_HOME/phonehome)
  --set P.KEY=VALUE  set a product's setting (repeatable; wins over --config)
  --config FILE      a Lua file of settings: return { product = { key = value } }
]]

-- The module of a command, or nil when there is no such command.
function M.get(name)
    for _, n in ipairs(M.names) do
        if n == name then return require("phonehome.cmd." .. name) end
    end
    return nil
end

return M
