-- The command line: parses the arguments against what the commands declare (cmd/) and
-- hands them to the command. Knows no command's options itself.
-- Exit codes: 0 success, 1 a failure the message explains, 2 bad usage.
local cmd = require("phonehome.cmd")
local core = require("phonehome.core")

local M = {}

-- Indents the continuation lines of a summary under its first.
local function summary_lines(text)
    return (text:gsub("\n", "\n" .. string.rep(" ", 21)))
end

-- The help of every command, or of one.
function M.usage(name)
    local c = name and cmd.get(name)
    local out = {}
    if c then
        local usage = c.usage:gsub("( %[%-%-)", " [OPTIONS]%1", 1)
        if usage == c.usage then usage = usage .. " [OPTIONS]" end
        out[#out + 1] = "Usage: phonehome " .. usage .. "\n\n"
            .. c.summary:gsub("^%l", string.upper) .. ".\n"
        if c.help ~= "" then out[#out + 1] = "\nOptions:\n" .. c.help end
    else
        out[#out + 1] = "Usage: phonehome COMMAND [ARGS] [OPTIONS] [-- PRODUCT-ARGS]\n\n"
            .. "Runs products' anonymous usage statistics (\"phone home\" reports), each "
            .. "defined by\none Lua script.\n\nCommands:\n"
        for _, n in ipairs(cmd.names) do
            local u = cmd.get(n).usage:gsub(" %[%-%- PRODUCT%-ARGS%]", "")
            out[#out + 1] = string.format("  %-18s %s\n", u, summary_lines(cmd.get(n).summary))
        end
    end
    out[#out + 1] = "\nOptions of every command:\n" .. cmd.common_help .. [[
  -h, --help         print this help and exit
  -V, --version      print the version and exit
]]
    if not c then out[#out + 1] = "\n'phonehome COMMAND --help' lists a command's options.\n" end
    out[#out + 1] = "\nExit status: 0 success, 1 failure (the message says why), 2 bad usage.\n"
    return table.concat(out)
end

-- The kind of an option ("value", "list", "flag") for a command, or for any command
-- when command is nil (options may come before the command).
local function kind_of(name, command)
    if cmd.common[name] then return cmd.common[name] end
    if command then return cmd.get(command).options[name] end
    for _, n in ipairs(cmd.names) do
        local k = cmd.get(n).options[name]
        if k then return k end
    end
    return nil
end

-- parse(argv) -> { command, args, options, flags } or nil, message. Options may come
-- before or after the command; each must be one the command accepts. What follows --
-- are the products' own flags.
function M.parse(argv)
    local out = { args = {}, options = {}, flags = {} }
    local given = {}
    local i = 1
    while i <= #argv do
        local a = argv[i]
        if a == "--" then
            for j = i + 1, #argv do
                local name, value = argv[j]:match("^(%-%-?[^=]+)=?(.*)$")
                if name then out.flags[name] = value ~= "" and value or true end
            end
            break
        elseif a == "-h" or a == "--help" then
            out.help = true
        elseif a == "-V" or a == "--version" then
            out.version = true
        elseif a:sub(1, 2) == "--" and #a > 2 then
            local name, value = a:match("^%-%-([%w%-]+)=(.*)$")
            name = name or a:sub(3)
            local kind = kind_of(name)
            if not kind then return nil, "unknown option '" .. a .. "'" end
            if kind == "flag" then
                if value ~= nil then return nil, "option --" .. name .. " takes no value" end
                value = true
            elseif value == nil then
                i = i + 1
                value = argv[i]
                if value == nil then return nil, "option --" .. name .. " needs a value" end
            end
            given[#given + 1] = name
            if kind == "list" then
                out.options[name] = out.options[name] or {}
                table.insert(out.options[name], value)
            else
                out.options[name] = value
            end
        elseif a:sub(1, 1) == "-" and a ~= "-" then
            return nil, "unknown option '" .. a .. "'"
        elseif not out.command then
            if not cmd.get(a) then return nil, "unknown command '" .. a .. "'" end
            out.command = a
        else
            out.args[#out.args + 1] = a
        end
        i = i + 1
    end
    if out.help or out.version then return out end
    if not out.command then return nil, "no command given" end
    for _, name in ipairs(given) do
        if not kind_of(name, out.command) then
            return nil, "option --" .. name .. " does not apply to " .. out.command
        end
    end
    if out.options.pid and out.options.pidfile then
        return nil, "give --pid or --pidfile, not both"
    end
    local args = cmd.get(out.command).args
    if args == "one" and #out.args ~= 1 then
        return nil, out.command .. " takes exactly one PRODUCT"
    elseif args == "none" and #out.args > 0 then
        return nil, out.command .. " takes no arguments, got '" .. out.args[1] .. "'"
    end
    return out
end

-- main(argv, home) -> exit code. home holds lib/ and the bundled scripts/.
function M.main(argv, home)
    local ctx, err = M.parse(argv)
    if not ctx then
        io.stderr:write("phonehome: ", err, "\n\n", M.usage())
        return 2
    end
    if ctx.help then
        io.stdout:write(M.usage(ctx.command))
        return 0
    end
    if ctx.version then
        io.stdout:write("phonehome ", core.version, "\n")
        return 0
    end
    ctx.home = home
    ctx.scripts = ctx.options.scripts or (home .. "/scripts")
    ctx.data_dir = ctx.options["data-dir"] or require("phonehome.daemon.datadir").default()
    ctx.session_id = core.uuid()
    return cmd.get(ctx.command).run(ctx)
end

return M
