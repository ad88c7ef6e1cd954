-- A real PostgreSQL 15 for specs: a fresh cluster in a temporary directory, on a unix
-- socket there and on 127.0.0.1, with one user who logs in by password (SCRAM) and owns one
-- database. PostgreSQL refuses to run as root, so under root the server runs as `nobody`.
local h = require("support.helper")

local M = {}

local BIN = "/usr/lib/postgresql/15/bin/"

-- Runs a shell command, its output in log; true, or false and what it printed.
local function run(cmd, log)
    local ok = os.execute("env -u LD_PRELOAD sh -c " .. h.quote(cmd) .. " >" .. h.quote(log)
        .. " 2>&1")
    if ok then return true end
    local f = io.open(log)
    local out = f and f:read("a") or ""
    if f then f:close() end
    return false, out
end

-- start() -> { url, host, port, user, password, dbname, dir, psql(sql), stop() }: a
-- server that answers on 127.0.0.1:port. stop() ends it at once and removes its directory;
-- it is safe to call twice. Fails (with the server's log) if the server does not start.
function M.start()
    local p = io.popen("mktemp -d /tmp/phonehome-pg.XXXXXX")
    local dir = p:read("l")
    p:close()
    local as = ""
    if h.sh("id -u") == "0" then
        h.sh("chown nobody " .. h.quote(dir))
        as = "runuser -u nobody -- "
    end
    local data, log = dir .. "/data", dir .. "/cmd.log"
    local pg = { host = "127.0.0.1", user = "phonehome_spec", password = "s3cret-Pw-42",
                 dbname = "product", dir = dir }

    function pg.stop()
        if pg.stopped then return end
        pg.stopped = true
        run(as .. BIN .. "pg_ctl -D " .. h.quote(data) .. " -m immediate -w stop", log)
        h.sh("rm -rf " .. h.quote(dir))
    end

    local function must(ok, out)
        if not ok then
            pg.stop()
            error("postgres: " .. tostring(out), 3)
        end
    end

    must(run(as .. BIN .. "initdb -D " .. h.quote(data) .. " -U postgres --auth-local=trust "
        .. "--auth-host=scram-sha-256 --no-locale -E UTF8 --no-sync --no-instructions", log))
    -- a port picked at random may be taken: try a few
    local ok, out
    for _ = 1, 5 do
        pg.port = math.random(20000, 59999)
        ok, out = run(as .. BIN .. "pg_ctl -D " .. h.quote(data) .. " -l "
            .. h.quote(dir .. "/server.log") .. " -w -t 60 -o "
            .. h.quote("-F -h 127.0.0.1 -p " .. pg.port .. " -k " .. dir
                .. " -c max_connections=20 -c shared_buffers=16MB") .. " start", log)
        if ok then break end
        local read, text = pcall(h.slurp, dir .. "/server.log")
        out = out .. (read and text or "")
    end
    must(ok, out)

    -- psql over the socket (trusted there) as user, on database db; fails on any error
    local function psql(sql, user, db)
        h.write(dir .. "/input.sql", sql)
        must(run("psql -X -q -v ON_ERROR_STOP=1 -h " .. h.quote(dir) .. " -p " .. pg.port
            .. " -U " .. user .. " -d " .. db .. " -f " .. h.quote(dir .. "/input.sql"), log))
    end
    psql(string.format("CREATE ROLE %s LOGIN PASSWORD '%s';\nCREATE DATABASE %s OWNER %s;\n",
        pg.user, pg.password, pg.dbname, pg.user), "postgres", "postgres")
    function pg.psql(sql) psql(sql, pg.user, pg.dbname) end
    pg.url = string.format("postgresql://%s:%s@127.0.0.1:%d/%s", pg.user, pg.password, pg.port,
        pg.dbname)
    return pg
end

return M
