-- Helpers for specs: the binary under test, running it, temporary files.
local M = {}

M.build = os.getenv("PHONEHOME_BUILD") or "build"
M.bin = M.build .. "/phonehome"

function M.quote(s)
    return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function slurp(path)
    local f = assert(io.open(path, "rb"))
    local s = f:read("a")
    f:close()
    return s
end
M.slurp = slurp

function M.write(path, text)
    local f = assert(io.open(path, "wb"))
    f:write(text)
    f:close()
    return path
end

-- replace(path, text) -> path: the file's new text written beside it and renamed over it,
-- for a file that a running server or the daemon may read at any moment.
function M.replace(path, text)
    M.write(path .. ".new", text)
    assert(os.rename(path .. ".new", path))
    return path
end

-- sqlite(db, sql) runs the statements on the SQLite database (created when missing),
-- stopping at the first error. A reader such as the daemon may hold the database for a
-- moment: the writer waits for it, as the product's own connection would.
function M.sqlite(db, sql)
    local p = assert(io.popen("env -u LD_PRELOAD sqlite3 -bail -cmd '.timeout 10000' "
        .. M.quote(db), "w"))
    p:write(sql)
    local ok, _, code = p:close()
    assert(ok, "sqlite3 " .. db .. ": exit " .. tostring(code))
end

-- statsd_send() -> the path of spec/support/statsd_send.c compiled into the build
-- directory (again when the source is newer): a StatsD client that packs lines into
-- datagrams (its header says its arguments).
function M.statsd_send()
    local path, src = M.build .. "/statsd_send", "spec/support/statsd_send.c"
    local out = M.sh("[ " .. M.quote(path) .. " -nt " .. src .. " ] || { cc -O2 -Wall -o "
        .. M.quote(path) .. ".$$ " .. src .. " && mv -f " .. M.quote(path) .. ".$$ "
        .. M.quote(path) .. "; } 2>&1 && echo ok")
    assert(out:match("ok$"), "cc: " .. out)
    return path
end

-- pauser(path) -> path: a program compiled there that waits for a signal whatever its
-- arguments, a stand-in for a product's process that keeps its command line as given and
-- costs no CPU time (a product's CPU figures can then be bounded).
function M.pauser(path)
    local out = M.sh("printf '#include <unistd.h>\\nint main(void) { for (;;) pause(); }\\n' "
        .. "| cc -x c -o " .. M.quote(path) .. " - 2>&1 && echo ok")
    assert(out:match("ok$"), "cc: " .. out)
    return path
end

-- state(data_dir, product) -> the product's schedule state as the daemon keeps it in its
-- data directory (times in epoch seconds), {} while there is none.
function M.state(data_dir, product)
    local f = io.open(data_dir .. "/" .. product .. "/state.json")
    if not f then return {} end
    local text = f:read("a")
    f:close()
    return require("phonehome.json").decode(text) or {}
end

-- A fresh temporary directory under M.tmp_root, removed by M.cleanup().
M.tmp_root = "/tmp"
local dirs = {}
function M.tmpdir()
    local p = io.popen("mktemp -d " .. M.quote(M.tmp_root) .. "/phonehome-spec.XXXXXX")
    local d = p:read("l")
    p:close()
    dirs[#dirs + 1] = d
    return d
end

function M.cleanup()
    for _, d in ipairs(dirs) do os.execute("rm -rf " .. M.quote(d)) end
    dirs = {}
end

-- The shell words that run the binary (bin, or M.bin) with args and env (and the
-- sanitizer's options).
local function command(args, env, bin)
    local cmd = {}
    local asan = os.getenv("PHONEHOME_ASAN_OPTIONS")
    if asan then cmd[#cmd + 1] = "ASAN_OPTIONS=" .. M.quote(asan) end
    for k, v in pairs(env or {}) do cmd[#cmd + 1] = k .. "=" .. M.quote(v) end
    cmd[#cmd + 1] = M.quote(bin or M.bin)
    for _, a in ipairs(args) do cmd[#cmd + 1] = M.quote(a) end
    return "env -u LD_PRELOAD " .. table.concat(cmd, " ")
end

-- run(args [, env]) -> { code, out, err }: the real binary, with its own stdout/stderr.
-- args is a list of arguments; env a table of variables to set for it.
-- With seconds, the binary is killed (code 137) if it runs longer: a spec of something
-- that used to hang fails instead of hanging.
function M.run(args, env, seconds)
    local d = M.tmpdir()
    local limit = seconds and ("timeout -s KILL " .. seconds .. " ") or ""
    local _, _, code = os.execute(limit .. command(args, env) .. " >" .. d .. "/out 2>" .. d
        .. "/err")
    return { code = code, out = slurp(d .. "/out"), err = slurp(d .. "/err") }
end

-- Starts a shell command in the background, in a fresh directory d, its output in d/out
-- and d/err: { pid, err, out, dir }. A watcher shell waits for it and keeps its exit code
-- for M.exit_code.
function M.spawn_shell(cmd)
    local d = M.tmpdir()
    M.sh("( " .. cmd .. " >" .. d .. "/out 2>" .. d .. "/err </dev/null & "
        .. "echo $! >" .. d .. "/pid.tmp; mv " .. d .. "/pid.tmp " .. d .. "/pid; wait $!; "
        .. "echo $? >" .. d .. "/code.tmp; mv " .. d .. "/code.tmp " .. d .. "/code ) "
        .. ">/dev/null 2>&1 &")
    local pid = tonumber(M.wait_for(d .. "/pid", "(%d+)"))
    return { pid = pid, err = d .. "/err", out = d .. "/out", dir = d }
end

-- Starts the binary (or another copy of it, bin) in the background (see spawn_shell).
function M.spawn(args, env, bin)
    return M.spawn_shell(command(args, env, bin))
end

-- lock(name): waits (up to 10 minutes) until no other copy of the suite holds the lock
-- name, then holds it until unlock(name). For specs that start a stand-in for a product's
-- process under its real name: phonehome finds a product's process by its command line,
-- and would find another suite's stand-in. A lock whose holder is gone is taken over.
local held = {}
function M.lock(name)
    if held[name] then
        held[name].count = held[name].count + 1
        return
    end
    local dir = "/tmp/phonehome-spec-lock-" .. name
    -- this process (a shell's $PPID would be the shell io.popen starts, gone at once)
    local me = tostring(require("phonehome.core").process().pid)
    for _ = 1, 30000 do
        if M.sh("mkdir " .. dir .. " 2>/dev/null && echo " .. me .. " >" .. dir
                .. "/pid && echo ok") == "ok" then
            held[name] = { dir = dir, count = 1 }
            return
        end
        local owner = M.sh("cat " .. dir .. "/pid 2>/dev/null")
        if owner ~= "" and M.sh("kill -0 " .. owner .. " 2>/dev/null || echo gone") == "gone" then
            M.sh("rm -rf " .. dir)
        else
            M.sh("sleep 0.02")
        end
    end
    error("timed out waiting for the lock " .. dir)
end

function M.unlock(name)
    local l = held[name]
    if not l then return end
    l.count = l.count - 1
    if l.count == 0 then
        M.sh("rm -rf " .. l.dir)
        held[name] = nil
    end
end

-- The lock of the bundled products' stand-in processes, for a describe block's setup
-- and teardown.
function M.lock_bundled() M.lock("bundled-products") end
function M.unlock_bundled() M.unlock("bundled-products") end

-- The names in a directory, sorted ({} when it does not exist).
function M.ls(dir)
    local out = {}
    local p = io.popen("ls -A " .. M.quote(dir) .. " 2>/dev/null")
    for name in p:lines() do out[#out + 1] = name end
    p:close()
    return out
end

-- Asserts that text holds expected, as plain text.
function M.has(expected, text)
    assert(text:find(expected, 1, true), "expected '" .. expected .. "' in '" .. text .. "'")
end

-- Waits (up to 10 s) for a match of pattern in a file; returns the capture.
function M.wait_for(path, pattern, seconds)
    for _ = 1, (seconds or 10) * 50 do
        local f = io.open(path)
        if f then
            local text = f:read("a")
            f:close()
            local m = text:match(pattern)
            if m then return m end
        end
        M.sh("sleep 0.02")
    end
    local f = io.open(path)
    error("timed out waiting for " .. pattern .. " in " .. path .. ":\n"
        .. (f and f:read("a") or ""))
end

-- Waits (up to seconds, default 10) until fn() returns a true value; returns it.
function M.wait_until(fn, what, seconds)
    for _ = 1, math.ceil((seconds or 10) / 0.02) do
        local v = fn()
        if v then return v end
        M.sh("sleep 0.02")
    end
    error("timed out waiting for " .. what)
end

-- The exit code of a spawned process, waiting for it (up to seconds, default 10).
function M.exit_code(proc, seconds)
    return tonumber(M.wait_for(proc.dir .. "/code", "(%d+)", seconds))
end

-- Starts spec/support/endpoint.lua with a plan: { pid, port, url, dir, requests() }.
function M.endpoint(plan)
    local d = M.tmpdir()
    -- under `make sanitize` the module needs the sanitizer runtime preloaded
    M.sh("LD_PRELOAD=" .. M.quote(os.getenv("LD_PRELOAD") or "") .. " ASAN_OPTIONS=detect_leaks=0 "
        .. "lua5.4 spec/support/endpoint.lua " .. M.quote(M.build) .. " " .. d .. " "
        .. M.quote(plan) .. " >" .. d .. "/log 2>&1 & echo $! >" .. d .. "/pid")
    local ep = { dir = d, pid = tonumber(M.wait_for(d .. "/pid", "(%d+)")) }
    ep.port = M.wait_for(d .. "/port", "(%d+)")
    ep.url = "http://127.0.0.1:" .. ep.port
    function ep.requests()
        local out = {}
        local f = io.open(d .. "/requests")
        if not f then return out end
        for line in f:lines() do
            local n, status, key, bytes, path, t =
                line:match("^(%d+) (%d+) (%S+) (%d+) (%S+) (%S+)$")
            out[#out + 1] = { n = tonumber(n), status = tonumber(status), key = key,
                              bytes = tonumber(bytes), path = path, time = tonumber(t),
                              body = M.slurp(d .. "/body-" .. n),
                              headers = M.slurp(d .. "/headers-" .. n) }
        end
        f:close()
        return out
    end
    function ep.stop() M.sh("kill -CONT " .. ep.pid .. "; kill " .. ep.pid .. " 2>/dev/null") end
    return ep
end

-- An HTTP request with curl: status, body. opts: method, body, headers, timeout,
-- interface (the local address to send from, such as 127.0.0.2: another client).
function M.http(url, opts)
    opts = opts or {}
    local d = M.tmpdir()
    local cmd = { "curl -s -o " .. d .. "/body -w '%{http_code}' --max-time "
        .. (opts.timeout or 10) }
    if opts.method then cmd[#cmd + 1] = "-X " .. opts.method end
    if opts.interface then cmd[#cmd + 1] = "--interface " .. M.quote(opts.interface) end
    if opts.body then
        M.write(d .. "/req", opts.body)
        cmd[#cmd + 1] = "--data-binary @" .. d .. "/req"
    end
    for k, v in pairs(opts.headers or {}) do cmd[#cmd + 1] = "-H " .. M.quote(k .. ": " .. v) end
    cmd[#cmd + 1] = M.quote(url)
    local status = tonumber(M.sh(table.concat(cmd, " ")))
    -- no answer at all (status 0): curl wrote no body
    local f = io.open(d .. "/body", "rb")
    if not f then return status, "" end
    local body = f:read("a")
    f:close()
    return status, body
end

-- A shell command's output, trailing space removed. The sanitizer runtime that
-- `make sanitize` preloads into the interpreter is kept out of the command.
function M.sh(cmd)
    local p = io.popen("env -u LD_PRELOAD sh -c " .. M.quote(cmd))
    local out = p:read("a")
    p:close()
    return (out:gsub("%s+$", ""))
end

-- A collector on 127.0.0.1 with its own database and extra arguments:
-- { pid, err, port, url, db, rows(), stop() }; rows() are what `reports` prints.
function M.collector(extra)
    local db = M.tmpdir() .. "/reports.db"
    local args = { "collect", "--listen", "127.0.0.1:0", "--db", db }
    for _, a in ipairs(extra or {}) do args[#args + 1] = a end
    local c = M.spawn(args)
    c.port = M.wait_for(c.err, "msg=listening addr=127%.0%.0%.1:(%d+)")
    c.url = "http://127.0.0.1:" .. c.port
    c.db = db
    function c.rows()
        local json = require("phonehome.json")
        local rows = {}
        for line in M.run({ "reports", "--db", db }).out:gmatch("[^\n]+") do
            rows[#rows + 1] = json.decode(line)
        end
        return rows
    end
    function c.stop() M.sh("kill -9 " .. c.pid .. " 2>/dev/null") end
    return c
end

-- A scripts directory with one test product "t" whose field n is 1, and extra
-- top-level text.
function M.product_dir(extra)
    local dir = M.tmpdir()
    M.write(dir .. "/t.lua", M.script("t",
        '{ name = "n", type = "int", description = "d", value = function() return 1 end },',
        extra))
    return dir
end

-- `phonehome run` with args and env, to its end (see M.run).
function M.run_daemon(args, env)
    local full = { "run" }
    for _, a in ipairs(args) do full[#full + 1] = a end
    return M.run(full, env)
end

-- How many times pattern matches in text.
function M.count(text, pattern)
    local n = 0
    for _ in text:gmatch(pattern) do n = n + 1 end
    return n
end

-- Runs the daemon (`run` and args) for a while, stops it with SIGTERM and checks that it
-- exited 0: the spawned process ({ err, out, ... }). bin: another binary.
function M.run_for(seconds, args, bin)
    local full = { "run" }
    for _, a in ipairs(args) do full[#full + 1] = a end
    local p = M.spawn(full, nil, bin)
    M.sh("sleep " .. seconds)
    M.sh("kill -TERM " .. p.pid)
    local code = M.exit_code(p)
    if code ~= 0 then error("the daemon exited " .. tostring(code) .. ":\n" .. slurp(p.err), 2) end
    return p
end

-- A minimal valid definition, as script text, with fields and extra top-level text.
function M.script(name, fields, extra)
    return string.format([[
return {
    name = %q,
    description = "a test product",
    endpoint = "http://127.0.0.1:9/report",
    schedule = { first = "5m", interval = "1h" },
    optout = { default = "on" },
    disclosure = { on = "on", off = "off" },
    %s
    fields = {
%s
    },
}
]], name, extra or "", fields)
end

return M
