-- EventStoreDB's report, read from a node as an operator would point phonehome at one:
-- its HTTP API in the node's own shapes (spec/fixtures/eventstoredb), its database
-- directory, its YAML config file, a process with its command line and environment. Every
-- figure is checked against what the node was given. #integration
local json = require("phonehome.json")
local h = require("support.helper")
local node = require("fixtures.eventstoredb.node")

local MIB = 1024 * 1024
local A = "0d5e1c3b-7a4f-4e21-9b8c-5f6a7b8c9d01"   -- this node
local B = "6c2f8e4a-1b3d-4a5e-8f7a-2b4c6d8e0f12"   -- the live leader
local C = "9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d"   -- an old leader, gone

-- `show eventstoredb` against node n: its settings, its process by --pid unless no_pid.
local function show(n, more, env, no_pid)
    local args = { "show", "eventstoredb", "--scripts", "scripts", "--data-dir", h.tmpdir() }
    for k, v in pairs(n.settings or {}) do
        args[#args + 1] = "--set"
        args[#args + 1] = "eventstoredb." .. k .. "=" .. v
    end
    if n.pid and not no_pid then
        args[#args + 1] = "--pid"
        args[#args + 1] = tostring(n.pid)
    end
    for _, a in ipairs(more or {}) do args[#args + 1] = a end
    return h.run(args, env, 60)
end

local function report(r)
    assert.are.equal(0, r.code, r.err)
    return assert(json.decode(r.out), r.out)
end

-- Seconds of a .NET TimeSpan text.
local function seconds(span)
    local d, hh, mm, ss = span:match("^(%d+)%.(%d%d):(%d%d):(%d%d%.?%d*)$")
    if not d then
        d = "0"
        hh, mm, ss = span:match("^(%d%d):(%d%d):(%d%d%.?%d*)$")
    end
    assert(hh, "not a TimeSpan: " .. span)
    return tonumber(d) * 86400 + tonumber(hh) * 3600 + tonumber(mm) * 60 + tonumber(ss)
end

-- The machine's figures as the node's own probes would find them.
local function machine(db)
    local blocks, size = h.sh("stat -f -c '%b %s' " .. h.quote(db)):match("(%d+) (%d+)")
    return {
        coreCount = tonumber(h.sh("nproc --all")),
        processorArchitecture = ({ x86_64 = "X64", aarch64 = "Arm64" })[h.sh("uname -m")],
        totalDiskSpace = math.tointeger(blocks * size),
        totalMemory = math.tointeger(tonumber(h.sh("sed -n 's/^MemTotal: *\\([0-9]*\\) kB/\\1/p' "
            .. "/proc/meminfo")) * 1024),
    }
end

-- A three-node cluster seen from a follower with a 1 MiB chunk size, projections of every
-- mode and state, three persistent subscriptions.
local function cluster_answers(db)
    local P = node.projection
    return {
        info = { esVersion = "24.10.1.0", state = "follower", features = { projections = true },
                 authentication = { type = "internal", properties = {} } },
        ["info.options"] = node.options({
            ClusterSize = "3", EnableAtomPubOverHttp = "True", EnableExternalTcp = "False",
            Insecure = "true", RunProjections = "all", ChunkSize = tostring(MIB), Db = db,
            HttpPort = "2113", MemDb = "False" }),
        gossip = {
            members = json.array({
                node.member(C, "Leader", 2113, { ip = "10.0.0.3", isAlive = false, epoch = 40 }),
                node.member(B, "Leader", 2113, { ip = "10.0.0.1", epoch = 41,
                                                 checkpoint = 12 * MIB }),
                node.member(A, "Follower", 2113, { ip = "10.0.0.2", epoch = 41,
                                                   checkpoint = 9 * MIB, version = "24.10.1.0" }),
            }),
            serverIp = "10.0.0.2", serverPort = 2113 },
        ["projections.any"] = { projections = json.array({
            P("$by_category", "Continuous", "Running"),
            P("$by_event_type", "Continuous", "Stopped"),
            P("$streams", "Continuous", "Running"),
            P("$stream_by_category", "Continuous", "Faulted"),
            P("orders", "Continuous", "Running"),
            P("invoices", "Continuous", "Running"),
            P("totals", "Continuous", "Stopped"),
            P("adhoc", "OneTime", "Running"),
            P("$adhoc-system", "OneTime", "Running"),
            P("query-1", "Transient", "Running"),
        }) },
        subscriptions = json.array({
            { eventStreamId = "orders", groupName = "billing", status = "Live" },
            { eventStreamId = "orders", groupName = "shipping", status = "Live" },
            { eventStreamId = "$all", groupName = "audit", status = "Paused" },
        }),
    }
end

describe("eventstoredb #integration", function()
    setup(h.lock_bundled)
    teardown(h.unlock_bundled)
    local nodes = {}
    local function start(o)
        local n = node.start(o)
        nodes[#nodes + 1] = n
        return n
    end
    after_each(function()
        for _, n in ipairs(nodes) do n.stop() end
        nodes = {}
        h.cleanup()
    end)

    it("reports every figure from the node's API, database directory and process", function()
        local dir = h.tmpdir()
        local n = start({ checkpoint = 5 * MIB + 17, env = { DOTNET_RUNNING_IN_CONTAINER = "true",
                                                             EVENTSTORE_CLUSTER_SIZE = "11" },
                          config = "ClusterSize: 9\nRunProjections: None\n",
                          answers = cluster_answers(dir .. "/elsewhere") })
        -- the node's Db is the directory the fixture wrote
        node.write_answers(n.root, { ["info.options"] = cluster_answers(n.db)["info.options"] })
        local r = show(n)
        local out = report(r)
        assert.are.equal("", r.err)
        local up = seconds(out.uptime)
        assert.is_true(up >= 0 and up < 120, out.uptime)
        out.uptime = nil
        local env = machine(n.db)
        env.isContainer, env.isKubernetes = true, false
        assert.are.same({
            version = "24.10.1.0",
            tag = json.null,
            cluster = { leaderId = B, nodeId = A, nodeState = "Follower" },
            configuration = { clusterSize = 3, enableAtomPubOverHttp = true,
                              enableExternalTcp = false, insecure = true, runProjections = "All" },
            -- the checkpoint of writer.chk (5 MiB + 17), not the one in /gossip (9 MiB)
            database = { epochNumber = 41, firstEpochId = node.EPOCH_ID, activeChunkNumber = 5 },
            environment = env,
            gossip = { [A] = "Follower", [B] = "Leader", [C] = "Leader" },
            persistentSubscriptions = { count = 3 },
            projections = { customProjectionCount = 3, standardProjectionCount = 4,
                            customProjectionRunningCount = 2, standardProjectionRunningCount = 2,
                            totalCount = 7, totalRunningCount = 4 },
        }, out)
        -- every request carried the operator's credentials, and none of it shows them
        local paths = {}
        for _, q in ipairs(n.server.requests()) do
            assert.are.equal("basic", q.auth)
            paths[#paths + 1] = q.path
        end
        table.sort(paths)
        assert.are.same({ "/gossip", "/info", "/info/options", "/projections/any", "/stats",
                          "/subscriptions" }, paths)
        r = show(n, { "--explain" })
        for _, text in ipairs({ r.out, r.err }) do
            assert.is_nil(text:find(node.PASSWORD, 1, true))
        end
        assert.matches("writer%s+file%s+" .. n.db:gsub("%p", "%%%0") .. "/writer.chk", r.out)
    end)

    it("reports the tag and options the operator gives instead of the node's", function()
        local n = start()
        n.settings.tag = "oss-v23.10.0"
        n.settings["configuration.clusterSize"] = "5"
        n.settings["configuration.runProjections"] = "All"
        local out = report(show(n))
        assert.are.equal("oss-v23.10.0", out.tag)
        assert.are.equal(5, out.configuration.clusterSize)
        assert.are.equal("All", out.configuration.runProjections)
        -- the others are still the node's
        assert.is_true(out.configuration.enableExternalTcp)
        assert.are.equal(29, out.database.epochNumber)
    end)

    it("without credentials, resolves the options as the node does and leaves the counts null",
       function()
        local dir = h.tmpdir()
        local config = dir .. "/eventstore.yaml"
        local n = start({ checkpoint = 3 * MIB + 5, credentials = false, args = {},
                          env = { EVENTSTORE_CONFIG = config, EVENTSTORE_CLUSTER_SIZE = "7",
                                  EVENTSTORE_INSECURE = "True" } })
        -- keys and values in any case; the environment wins over the file
        h.write(config, "---\nClusterSize: 5\nrunprojections: all\nEnableAtomPubOverHttp: "
            .. "true\nDb: " .. n.db .. "\nChunkSize: " .. MIB .. "\n")
        local r = show(n)
        local out = report(r)
        assert.are.same({ clusterSize = 7, enableAtomPubOverHttp = true,
                          enableExternalTcp = false, insecure = true, runProjections = "All" },
                        out.configuration)
        assert.are.same({ epochNumber = 29, firstEpochId = node.EPOCH_ID, activeChunkNumber = 3 },
                        out.database)
        assert.are.same({ count = json.null }, out.persistentSubscriptions)
        for _, v in pairs(out.projections) do assert.are.equal(json.null, v) end
        assert.are.equal("23.10.0.0", out.version)
        assert.matches("field 'persistentSubscriptions.count': source 'subscriptions' failed: "
            .. ".-/subscriptions: HTTP 401", r.err)
        assert.matches("field 'projections.totalCount': source 'projections' failed: "
            .. ".-/projections/any: HTTP 401", r.err)
        for _, q in ipairs(n.server.requests()) do assert.are.equal("-", q.auth) end
        -- a config file the node names must be there
        os.remove(config)
        r = show(n, { "--set", "eventstoredb.db=" .. n.db })
        out = report(r)
        assert.are.same({ clusterSize = 7, enableAtomPubOverHttp = json.null,
                          enableExternalTcp = json.null, insecure = true,
                          runProjections = json.null }, out.configuration)
        assert.matches("field 'configuration.runProjections': source 'config' failed: "
            .. ".-eventstore.yaml: No such file", r.err)
        -- with nothing set anywhere (and no default config file), the node's defaults
        n = start({ credentials = false, args = {} })
        out = report(show(n, { "--set", "eventstoredb.db=" .. n.db }))
        assert.are.same({ clusterSize = 1, enableAtomPubOverHttp = false,
                          enableExternalTcp = false, insecure = false, runProjections = "None" },
                        out.configuration)
        assert.are.equal(2, out.database.activeChunkNumber)
    end)

    it("falls back to /gossip for the writer checkpoint, to /info for the state, and to /stats "
       .. "for the uptime", function()
        local started = os.time() - 3661
        local n = start({ answers = {
            info = { state = "clone", features = {} },
            stats = { proc = { startTime = os.date("!%Y-%m-%dT%H:%M:%S", started) .. ".5000000Z",
                               id = 1 } } } })
        os.remove(n.db .. "/writer.chk")
        local out = report(show(n, {}, nil, true))
        -- the gossip's checkpoint: 2 chunks and 4321 bytes; the version of its entry
        assert.are.equal(2, out.database.activeChunkNumber)
        assert.are.equal("23.10.0.0", out.version)
        assert.are.equal("Leader", out.cluster.nodeState)
        -- no process: the uptime from /stats, the process's figures null
        local up = seconds(out.uptime)
        assert.is_true(up >= 3660 and up < 3661 + 120, out.uptime)
        assert.are.equal(json.null, out.environment.isContainer)
        assert.are.equal(json.null, out.environment.isKubernetes)
        -- without /gossip: the state /info gives, in .NET's spelling; the rest null
        node.write_answers(n.root, { gossip = false })
        local r = show(n)
        out = report(r)
        assert.are.equal("Clone", out.cluster.nodeState)
        assert.are.same({ leaderId = json.null, nodeId = json.null, nodeState = "Clone" },
                        out.cluster)
        assert.are.same({ epochNumber = json.null, firstEpochId = node.EPOCH_ID,
                          activeChunkNumber = json.null }, out.database)
        assert.are.same({}, out.gossip)
        assert.are.equal(json.null, out.version)
        assert.matches("field 'cluster.nodeId': source 'gossip' failed: .-/gossip: HTTP 404",
                       r.err)
        assert.matches("field 'version': source 'gossip' failed", r.err)
    end)

    it("finds the node's process by its command line, and its config by its environment",
       function()
        local config = h.tmpdir() .. "/node.conf"
        local n = start({ name = "/opt/eventstore/EventStore.ClusterNode", args = {},
                          credentials = false,
                          env = { EVENTSTORE_CONFIG = config, DOTNET_RUNNING_IN_CONTAINER = "1" } })
        h.write(config, "ClusterSize: 4\nDb: " .. n.db .. "\n")
        local out = report(show(n, {}, nil, true))
        assert.are.equal(4, out.configuration.clusterSize)
        assert.are.equal(node.EPOCH_ID, out.database.firstEpochId)
        assert.is_true(out.environment.isContainer)
        assert.is_false(out.environment.isKubernetes)
        -- the process's uptime, not the start time /stats gives (2023)
        assert.is_true(seconds(out.uptime) < 120, out.uptime)
    end)

    it("sends nothing when the node's environment opts out, and still builds the report",
       function()
        local ep = h.endpoint("201")
        finally(ep.stop)
        local function run(n, more)
            local args = { "run", "eventstoredb", "--once", "--scripts", "scripts",
                           "--data-dir", h.tmpdir(), "--endpoint", ep.url, "--pid",
                           tostring(n.pid) }
            for k, v in pairs(n.settings) do
                args[#args + 1] = "--set"
                args[#args + 1] = "eventstoredb." .. k .. "=" .. v
            end
            for _, a in ipairs(more or {}) do args[#args + 1] = a end
            return h.run(args, nil, 60)
        end
        local on = start()
        local r = run(on)
        assert.are.equal(0, r.code, r.err)
        assert.matches('msg="report sent"', r.err)
        assert.are.equal(1, #ep.requests())
        local sent = json.decode(ep.requests()[1].body)
        assert.are.equal(node.NODE_ID, sent.cluster.nodeId)
        assert.are.equal(node.EPOCH_ID, sent.database.firstEpochId)
        for _, value in ipairs({ "true", "True" }) do
            local off = start({ env = { EVENTSTORE_TELEMETRY_OPTOUT = value } })
            r = run(off)
            assert.are.equal(0, r.code, r.err)
            assert.matches('msg="report built, not sent" reason="EVENTSTORE_TELEMETRY_OPTOUT='
                .. value .. ' %(product process ' .. off.pid .. '%)" report=".-'
                .. node.NODE_ID:gsub("%p", "%%%0"), r.err)
        end
        -- the node's switch given to phonehome as a product flag
        r = run(on, { "--", "--telemetry-optout" })
        assert.matches('msg="report built, not sent" reason="flag %-%-telemetry%-optout"', r.err)
        assert.are.equal(1, #ep.requests())
    end)

    it("reports no figure of a node that is not running, and says nothing of it", function()
        local n = start({ process = false })
        n.stop()
        local data = h.tmpdir()
        local args = { "show", "eventstoredb", "--scripts", "scripts", "--data-dir", data,
                       "--set", "eventstoredb.url=" .. n.url }
        local r = h.run(args, nil, 60)
        local out = report(r)
        assert.are.equal("", r.err)
        assert.are.same({ clusterSize = json.null, enableAtomPubOverHttp = json.null,
                          enableExternalTcp = json.null, insecure = json.null,
                          runProjections = json.null }, out.configuration)
        assert.are.same({ leaderId = json.null, nodeId = json.null, nodeState = json.null },
                        out.cluster)
        assert.are.same({}, out.gossip)
        assert.are.equal(json.null, out.environment.isContainer)
        -- its identity is phonehome's own for this installation, the same at each report
        assert.matches("^%x+%-%x+%-%x+%-%x+%-%x+$", out.database.firstEpochId)
        assert.are.equal(out.database.firstEpochId,
                         report(h.run(args, nil, 60)).database.firstEpochId)
        -- but the database's, when its directory can be read
        args[#args + 1] = "--set"
        args[#args + 1] = "eventstoredb.db=" .. n.db
        assert.are.equal(node.EPOCH_ID, report(h.run(args, nil, 60)).database.firstEpochId)
    end)

    it("warns and stands in its own id when chunk 0 does not open with the first epoch",
       function()
        local n = start()
        local chunk = node.chunk(node.EPOCH_ID)
        -- a prepare record (type 0) where the epoch should be
        h.write(n.db .. "/chunk-000000.000000", chunk:sub(1, 132) .. "\0" .. chunk:sub(134))
        local r = show(n)
        local out = report(r)
        assert.are_not.equal(node.EPOCH_ID, out.database.firstEpochId)
        assert.matches("the product's instance id could not be read %(.-chunk 0 does not open "
            .. "with a system record", r.err)
        h.write(n.db .. "/chunk-000000.000000", chunk:sub(1, 170))
        r = show(n)
        assert.matches("the epoch record is cut short", r.err)
        h.write(n.db .. "/chunk-000000.000000", chunk)
        assert.are.equal(node.EPOCH_ID, report(show(n)).database.firstEpochId)
    end)

    it("reads a secure node over HTTPS with the CA the operator gives", function()
        local dir = h.tmpdir()
        h.sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
            .. "-subj /CN=eventstoredb-node -addext subjectAltName=IP:127.0.0.1 -days 2 "
            .. "-keyout " .. dir .. "/key.pem -out " .. dir .. "/cert.pem 2>/dev/null")
        local n = start({ tls = { cert = dir .. "/cert.pem", key = dir .. "/key.pem" } })
        assert.matches("^https://", n.url)
        local r = show(n)
        assert.matches("field 'cluster.nodeId': source 'gossip' failed: https://.-/gossip: ", r.err)
        assert.are.equal(json.null, report(r).cluster.nodeId)
        n.settings.node_ca_file = dir .. "/cert.pem"
        r = show(n)
        assert.are.equal("", r.err)
        local out = report(r)
        assert.are.equal(node.NODE_ID, out.cluster.nodeId)
        assert.are.equal(5, out.projections.totalCount)
    end)

    it("passes check quietly: a dry build reads nothing of the node", function()
        local n = start()
        local r = h.run({ "check", "scripts/eventstoredb.lua" })
        assert.are.equal(0, r.code, r.err)
        assert.are.equal("", r.err)
        assert.are.same({}, n.server.requests())
    end)

    it("docs lists every URL, file, variable and flag it reads", function()
        local r = h.run({ "docs", "eventstoredb", "--scripts", "scripts" })
        assert.are.equal(0, r.code, r.err)
        for _, text in ipairs({
            "GET <url>/info:", "GET <url>/info/options:", "GET <url>/gossip:",
            "GET <url>/projections/any:", "GET <url>/subscriptions:", "GET <url>/stats:",
            "<db>/writer.chk", "<db>/chunk-000000.000000", "ClusterSize, EnableAtomPubOverHttp",
            "`EVENTSTORE_CONFIG`", "`DOTNET_RUNNING_IN_CONTAINER`", "`EVENTSTORE_CLUSTER_SIZE`",
            "`--config`", "`--db`", "`EVENTSTORE_TELEMETRY_OPTOUT`", "`--telemetry-optout`",
            "| `url` | string | `\"http://127.0.0.1:2113\"` |", "| `password_file` | string |",
            "| `config` | string |", "| `db` | string |", "(database.firstEpochId)",
        }) do
            h.has(text, r.out)
        end
    end)
end)
