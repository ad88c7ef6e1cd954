-- The product's process found among all processes, and its command-line flags: pure Lua
-- over phonehome.core, so that it serves the control state and a sandbox alike.
local core = require("phonehome.core")

local M = {}

local function basename(path)
    return (path:match("([^/]*)/*$"))
end

-- Whether the process with command line argv (and pid) is what match describes.
local function matches(pid, argv, match)
    if #argv == 0 then return false end -- a kernel thread, or a zombie
    if match.argv0 and basename(argv[1]) ~= match.argv0 then return false end
    if match.command and not table.concat(argv, " "):find(match.command) then
        return false
    end
    if match.exe then
        -- the executable of another user's process is not readable: its argv[0] tells
        local exe = core.process_exe(pid) or argv[1]
        exe = exe:gsub(" %(deleted%)$", "")
        if match.exe:find("/", 1, true) then return exe == match.exe end
        return basename(exe) == match.exe
    end
    return true
end

local function describe(match)
    local parts = {}
    for _, k in ipairs({ "exe", "command", "argv0" }) do
        local v = match[k]
        if v then
            parts[#parts + 1] = k .. "=" .. ((v == "" or v:find("[%s\"]")) and
                string.format("%q", v) or v)
        end
    end
    return table.concat(parts, " ")
end

-- find(match) -> the pid of the oldest process that match describes, or nil, message.
-- match: { exe = basename or absolute path of its executable, command = a Lua pattern
-- found in its arguments joined by spaces, argv0 = basename of its argv[0] }; every key
-- given must hold. phonehome itself and its children are never the product.
function M.find(match)
    if type(match) ~= "table" or not (match.exe or match.command or match.argv0) then
        error("process.find: give exe, command or argv0", 2)
    end
    for _, k in ipairs({ "exe", "command", "argv0" }) do
        if match[k] ~= nil and type(match[k]) ~= "string" then
            error("process.find: " .. k .. " must be a string", 2)
        end
    end
    local self = core.process().pid
    local best
    for _, pid in ipairs(assert(core.processes())) do
        local argv = pid ~= self and core.process_cmdline(pid)
        local p = argv and matches(pid, argv, match) and core.process(pid)
        -- start times are whole clock ticks (10 ms) apart: closer is the same tick
        if p and p.ppid ~= self and (not best or p.start_time < best.start_time - 0.005
                or (p.start_time < best.start_time + 0.005 and pid < best.pid)) then
            best = p
        end
    end
    if not best then return nil, "no process matches " .. describe(match) end
    return best.pid
end

-- flag(argv, name) -> the value of --name in a command line (argv[1] being the program):
-- "--name value" or "--name=value" (one dash too, as Go's flags allow), true for a bare
-- flag (followed by nothing or by another option), nil when absent. The last one wins;
-- "--" ends the options. name may be given with its dashes, as definitions declare it.
-- Then the list of every value given, in order (for a flag given several times, such as
-- Synapse's --config-path).
function M.flag(argv, name)
    name = name:gsub("^%-%-?", "")
    local value
    local all = {}
    local i = 2
    while i <= #argv do
        local a = argv[i]
        if a == "--" then break end
        local dashes = a:match("^%-%-?") or ""
        local key, eq = a:sub(#dashes + 1):match("^([^=]*)(=?)")
        if #dashes > 0 and key == name then
            if eq == "=" then
                value = a:sub(#dashes + #key + 2)
            elseif argv[i + 1] and not argv[i + 1]:match("^%-[^%d.]") then
                value = argv[i + 1]
                i = i + 1
            else
                value = true
            end
            all[#all + 1] = value
        end
        i = i + 1
    end
    return value, all
end

return M
