local prometheus = require("phonehome.sources.prometheus")

-- as client_golang's promhttp writes it, with a product's own families after the runtime's
local GOLANG = [[
# HELP go_gc_duration_seconds A summary of the pause duration of garbage collection cycles.
# TYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile="0"} 2.8375e-05
go_gc_duration_seconds{quantile="0.25"} 4.1917e-05
go_gc_duration_seconds{quantile="0.5"} 5.5e-05
go_gc_duration_seconds{quantile="0.75"} 8.0458e-05
go_gc_duration_seconds{quantile="1"} 0.001289125
go_gc_duration_seconds_sum 0.012760373
go_gc_duration_seconds_count 142
# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 37
# HELP go_info Information about the Go environment.
# TYPE go_info gauge
go_info{version="go1.21.5"} 1
# HELP go_memstats_alloc_bytes Number of bytes allocated and still in use.
# TYPE go_memstats_alloc_bytes gauge
go_memstats_alloc_bytes 1.2345672e+07
# HELP go_memstats_alloc_bytes_total Total number of bytes allocated, even if freed.
# TYPE go_memstats_alloc_bytes_total counter
go_memstats_alloc_bytes_total 9.87654321e+08
# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.34
# HELP process_max_fds Maximum number of open file descriptors.
# TYPE process_max_fds gauge
process_max_fds 1.048576e+06
# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 5.4157312e+07
# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.
# TYPE process_start_time_seconds gauge
process_start_time_seconds 1.70000000012e+09
# HELP http_request_duration_seconds Time spent serving HTTP requests.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{handler="/api",method="GET",le="0.005"} 24054
http_request_duration_seconds_bucket{handler="/api",method="GET",le="0.01"} 33444
http_request_duration_seconds_bucket{handler="/api",method="GET",le="0.1"} 100392
http_request_duration_seconds_bucket{handler="/api",method="GET",le="1"} 129389
http_request_duration_seconds_bucket{handler="/api",method="GET",le="+Inf"} 133988
http_request_duration_seconds_sum{handler="/api",method="GET"} 53423.5
http_request_duration_seconds_count{handler="/api",method="GET"} 133988
http_request_duration_seconds_bucket{handler="/api",method="POST",le="0.005"} 10
http_request_duration_seconds_bucket{handler="/api",method="POST",le="0.01"} 20
http_request_duration_seconds_bucket{handler="/api",method="POST",le="0.1"} 30
http_request_duration_seconds_bucket{handler="/api",method="POST",le="1"} 40
http_request_duration_seconds_bucket{handler="/api",method="POST",le="+Inf"} 41
http_request_duration_seconds_sum{handler="/api",method="POST"} 12.5
http_request_duration_seconds_count{handler="/api",method="POST"} 41
# HELP app_users Users by state.\nCounted at startup; a backslash \\ here.
# TYPE app_users gauge
app_users{state="active"} 120
app_users{state="deactivated"} 7
app_users{state="odd \"quoted\"\\path\nnext"} 1
# HELP app_up Whether the app is up.
# TYPE app_up untyped
app_up 1 1700000000123
]]

describe("prometheus", function()
    describe("a client_golang exposition", function()
        local scrape = assert(prometheus.parse(GOLANG))

        it("reads runtime and process gauges and counters as floats", function()
            assert.are.equal(37, scrape:value("go_goroutines"))
            assert.are.equal("float", math.type(scrape:value("go_goroutines")))
            assert.are.equal(12345672, scrape:value("go_memstats_alloc_bytes"))
            assert.are.equal(987654321, scrape:value("go_memstats_alloc_bytes_total"))
            assert.are.equal(12.34, scrape:value("process_cpu_seconds_total"))
            assert.are.equal(1048576, scrape:value("process_max_fds"))
            assert.are.equal(1700000000.12, scrape:value("process_start_time_seconds"))
            assert.are.equal(1, scrape:value("go_info", { version = "go1.21.5" }))
        end)

        it("reads summary quantiles and histogram buckets as plain series", function()
            assert.are.equal(5.5e-05, scrape:value("go_gc_duration_seconds", { quantile = "0.5" }))
            assert.are.equal(142, scrape:value("go_gc_duration_seconds_count"))
            assert.are.equal(133988, scrape:value("http_request_duration_seconds_bucket",
                { handler = "/api", method = "GET", le = "+Inf" }))
            assert.are.equal(41, scrape:value("http_request_duration_seconds_count",
                { handler = "/api", method = "POST" }))
            assert.are.equal(134029, scrape:sum("http_request_duration_seconds_count"))
            assert.are.equal(134029, scrape:sum("http_request_duration_seconds_bucket",
                { le = "+Inf" }))
            assert.are.equal(5, #scrape:series("go_gc_duration_seconds"))
        end)

        it("unescapes label values and help text", function()
            assert.are.equal(1, scrape:value("app_users", { state = 'odd "quoted"\\path\nnext' }))
            local t, help = scrape:family("app_users")
            assert.are.equal("gauge", t)
            assert.are.equal("Users by state.\nCounted at startup; a backslash \\ here.", help)
            assert.are.equal("histogram", scrape:family("http_request_duration_seconds"))
            assert.are.equal("summary", scrape:family("go_gc_duration_seconds"))
            assert.are.equal("untyped", scrape:family("app_up"))
            assert.is_nil(scrape:family("nope"))
        end)

        it("names families, not the series a histogram or summary owns", function()
            assert.is_nil(scrape:family("http_request_duration_seconds_bucket"))
            assert.is_nil(scrape:family("http_request_duration_seconds_count"))
            assert.is_nil(scrape:family("go_gc_duration_seconds_sum"))
            local plain = assert(prometheus.parse("m 1\nh_bucket 2\n"))
            assert.are.same({ "untyped" }, { plain:family("m") })
            assert.are.equal("untyped", plain:family("h_bucket"))
        end)

        it("is read-only to the scripts holding it", function()
            assert.has_error(function() scrape.go_goroutines = 1 end)
            assert.are.equal("prometheus scrape", getmetatable(scrape))
            assert.is_nil(rawget(scrape, "index"))
            local list = scrape:series("go_info")
            list[1].labels.version = "changed"
            assert.are.equal(1, scrape:value("go_info", { version = "go1.21.5" }))
        end)

        it("keeps timestamps as integer milliseconds", function()
            local s = scrape:series("app_up")
            assert.are.equal(1, #s)
            assert.are.equal(1700000000123, s[1].timestamp)
            assert.are.equal("integer", math.type(s[1].timestamp))
            assert.is_nil(scrape:series("go_goroutines")[1].timestamp)
        end)
    end)

    describe("value", function()
        local scrape = assert(prometheus.parse('m 1\nm{a="x"} 2\nm{a="x",b="y"} 3\n'))

        it("finds only the series with exactly those labels", function()
            assert.are.equal(1, scrape:value("m"))
            assert.are.equal(1, scrape:value("m", {}))
            assert.are.equal(2, scrape:value("m", { a = "x" }))
            assert.are.equal(3, scrape:value("m", { b = "y", a = "x" }))
            assert.is_nil(scrape:value("m", { b = "y" }))
            assert.is_nil(scrape:value("m", { a = "x", b = "y", c = "z" }))
            assert.is_nil(scrape:value("other"))
        end)

        it("cannot be fooled by a label value that looks like another label set", function()
            local s = assert(prometheus.parse('m{a="1\\",b=\\"2"} 5\n'))
            assert.is_nil(s:value("m", { a = "1", b = "2" }))
            assert.are.equal(5, s:value("m", { a = '1",b="2' }))
        end)

        it("finds nothing for a label value no exposition can hold", function()
            assert.is_nil(scrape:value("m", { a = "x\0b\0y" }))
        end)

        it("refuses labels that are not strings", function()
            assert.has_error(function() scrape:value("m", { a = 1 }) end)
        end)
    end)

    describe("sum", function()
        local scrape = assert(prometheus.parse(
            'r{code="200",h="a"} 3\nr{code="500",h="a"} 1\nr{code="200",h="b"} 4\nz 0\n'))

        it("adds every series whose labels include the match", function()
            assert.are.equal(8, scrape:sum("r"))
            assert.are.equal(8, scrape:sum("r", {}))
            assert.are.equal(7, scrape:sum("r", { code = "200" }))
            assert.are.equal(4, scrape:sum("r", { code = "200", h = "b" }))
            assert.are.equal(0, scrape:sum("z"))
        end)

        it("is nil when no series matches, so absent differs from 0", function()
            assert.is_nil(scrape:sum("missing"))
            assert.is_nil(scrape:sum("r", { code = "404" }))
            assert.is_nil(scrape:sum("z", { a = "b" }))
        end)
    end)

    describe("series", function()
        it("lists every series in exposition order, as copies", function()
            local scrape = assert(prometheus.parse('s{a="1"} 1 10\ns{a="2"} 2\n'))
            local list = scrape:series("s")
            assert.are.same({ { labels = { a = "1" }, value = 1, timestamp = 10 },
                { labels = { a = "2" }, value = 2 } }, list)
            list[1].labels.a = "changed"
            list[1].value = 99
            assert.are.equal(1, scrape:value("s", { a = "1" }))
            assert.are.same({}, scrape:series("missing"))
        end)
    end)

    describe("values", function()
        local function v(s)
            local scrape = assert(prometheus.parse("m " .. s .. "\n"))
            return scrape:value("m")
        end

        it("reads infinities and NaN as Go does", function()
            assert.are.equal(math.huge, v("+Inf"))
            assert.are.equal(math.huge, v("Inf"))
            assert.are.equal(math.huge, v("inf"))
            assert.are.equal(math.huge, v("+Infinity"))
            assert.are.equal(-math.huge, v("-Inf"))
            for _, nan in ipairs({ "NaN", "nan", "NAN" }) do
                local x = v(nan)
                assert.is_true(x ~= x)
            end
        end)

        it("reads decimals, exponents and hexadecimal floats", function()
            assert.are.equal(0, v("0"))
            assert.are.equal(-0.5, v("-.5"))
            assert.are.equal(1.5, v("+1.5"))
            assert.are.equal(3, v("3."))
            assert.are.equal(1.5e-7, v("1.5e-7"))
            assert.are.equal(2e10, v("2E+10"))
            assert.are.equal(0.25, v("0x1p-2"))
            assert.are.equal(18446744073709551616, v("18446744073709551616"))
        end)

        it("lets NaN and Inf flow through sums", function()
            local scrape = assert(prometheus.parse('m{a="1"} NaN\nm{a="2"} 1\ni{a="1"} +Inf\n'))
            local s = scrape:sum("m")
            assert.is_true(s ~= s)
            assert.are.equal(math.huge, scrape:sum("i"))
            local nan = scrape:value("m", { a = "1" })
            assert.is_true(nan ~= nan)
        end)
    end)

    describe("leniency the format allows", function()
        it("takes blank lines, trailing spaces, tabs, other comments, no final newline", function()
            local scrape = assert(prometheus.parse(
                '\n# just a comment\n#\n  \nm{a="1" , b="2",} 4   \t\nn\t5 \t 6  '))
            assert.are.equal(4, scrape:value("m", { a = "1", b = "2" }))
            assert.are.equal(5, scrape:value("n"))
            assert.are.equal(6, scrape:series("n")[1].timestamp)
        end)

        it("takes an empty label set, empty values, negative timestamps and a bare HELP", function()
            local scrape = assert(prometheus.parse(
                '# HELP m\nm{} 1 -5\nk{a=""} 2\ncolon:name_x 3\n'))
            assert.are.equal(1, scrape:value("m"))
            assert.are.equal(-5, scrape:series("m")[1].timestamp)
            assert.are.equal(2, scrape:value("k", { a = "" }))
            assert.are.equal(3, scrape:value("colon:name_x"))
            assert.are.equal("", select(2, scrape:family("m")))
        end)

        it("reads an empty exposition as no series", function()
            local scrape = assert(prometheus.parse(""))
            assert.is_nil(scrape:value("m"))
            assert.is_nil(scrape:sum("m"))
        end)
    end)

    describe("refuses", function()
        local cases = {
            { "bad metric name", "ok 1\n1bad 2\n", 2 },
            { "dash in name", "a-b 1\n", 1 },
            { "no value", "m\n", 1 },
            { "no value after labels", 'm{a="1"}\n', 1 },
            { "bad value", "m abc\n", 1 },
            { "two dots", "m 1.2.3\n", 1 },
            { "signed NaN", "m +NaN\n", 1 },
            { "hex without exponent", "m 0x10\n", 1 },
            { "value out of range", "m 1e400\n", 1 },
            { "float timestamp", "m 1 1.5\n", 1 },
            { "timestamp out of range", "m 1 9223372036854775808\n", 1 },
            { "text after the timestamp", "m 1 2 3\n", 1 },
            { "bad label name", "m{1a=\"x\"} 1\n", 1 },
            { "colon in label name", "m{a:b=\"x\"} 1\n", 1 },
            { "unquoted label value", "m{a=x} 1\n", 1 },
            { "missing =", "m{a\"x\"} 1\n", 1 },
            { "unterminated label value", "# c\nm{a=\"x} 1\n", 2 },
            { "unclosed label set", "m{a=\"x\" 1\n", 1 },
            { "missing comma", "m{a=\"x\" b=\"y\"} 1\n", 1 },
            { "bad escape in label value", "m{a=\"\\t\"} 1\n", 1 },
            { "invalid UTF-8 in label value", "m{a=\"\255\"} 1\n", 1 },
            { "duplicate label name", "m{a=\"1\",a=\"2\"} 1\n", 1 },
            { "reserved __name__ label", "m{__name__=\"m\"} 1\n", 1 },
            { "same series twice", "m{a=\"1\",b=\"2\"} 1\nm{b=\"2\",a=\"1\"} 2\n", 2 },
            { "same unlabelled series twice", "m 1\n\nm 2\n", 3 },
            { "same series twice, spaced and escaped differently",
                "m{a=\"x\\\\\",b=\"\"} 1\nm{ b = \"\" , a=\"x\\\\\" } 2\n", 2 },
            { "second TYPE", "# TYPE m gauge\n# TYPE m counter\n", 2 },
            { "TYPE after samples", "m 1\n# TYPE m gauge\n", 2 },
            { "histogram TYPE after buckets",
                "h_bucket{le=\"1\"} 1\n# TYPE h histogram\n", 2 },
            { "unknown TYPE", "# TYPE m gaugey\n", 1 },
            { "upper-case TYPE", "# TYPE m GAUGE\n", 1 },
            { "TYPE without a type", "# TYPE m\n", 1 },
            { "TYPE with extra words", "# TYPE m gauge extra\n", 1 },
            { "TYPE with a bad name", "# TYPE 1m gauge\n", 1 },
            { "HELP without a name", "# HELP\n", 1 },
            { "second HELP", "# HELP m a\n# HELP m b\n", 2 },
            { "bad escape in HELP", "# HELP m a \\t b\n", 1 },
            { "backslash ending HELP", "# HELP m a \\\n", 1 },
            { "bucket without le", "# TYPE h histogram\nh_bucket 1\n", 2 },
            { "bucket with a bad le", "# TYPE h histogram\nh_bucket{le=\"x\"} 1\n", 2 },
            { "bare histogram sample", "# TYPE h histogram\nh 1\n", 2 },
            { "summary sample without quantile", "# TYPE s summary\ns 1\n", 2 },
            { "carriage return", "m 1\r\n", 1 },
            { "NUL byte", "m 1\0\n", 1 },
        }
        for _, case in ipairs(cases) do
            it(case[1] .. ", naming the line", function()
                local scrape, err = prometheus.parse(case[2])
                assert.is_nil(scrape)
                assert.is_string(err)
                assert.are.equal("line " .. case[3] .. ": ", err:sub(1, #("line " .. case[3]) + 2))
            end)
        end

        it("what is not a string", function()
            local scrape, err = prometheus.parse(nil)
            assert.is_nil(scrape)
            assert.matches("string", err)
        end)
    end)

    describe("pause", function()
        it("is called every PAUSE_LINES lines, so a coroutine can yield", function()
            local lines = {}
            for i = 1, 2500 do lines[i] = "m" .. i .. " " .. i end
            local text = table.concat(lines, "\n")
            local co = coroutine.wrap(function()
                return prometheus.parse(text, coroutine.yield)
            end)
            local yields = 0
            local scrape = co()
            while scrape == nil do
                yields = yields + 1
                scrape = co()
            end
            assert.are.equal(math.floor(2500 / prometheus.PAUSE_LINES), yields)
            assert.are.equal(2500, scrape:value("m2500"))
        end)

        it("is not called for a short exposition, nor when an error comes first", function()
            local calls = 0
            local function count() calls = calls + 1 end
            assert.is_table(prometheus.parse("m 1\n", count))
            assert.is_nil(prometheus.parse("m\n" .. string.rep("n 1\n", 5000), count))
            assert.are.equal(0, calls)
        end)
    end)

    describe("bounds", function()
        it("refuses input over the size limit before reading it", function()
            assert.are.equal(16 * 1024 * 1024, prometheus.MAX_BYTES)
            local scrape, err = prometheus.parse(string.rep("#", prometheus.MAX_BYTES + 1))
            assert.is_nil(scrape)
            assert.matches("limit", err)
        end)

        it("refuses more samples than the limit", function()
            assert.are.equal(1000000, prometheus.MAX_SAMPLES)
            local saved = prometheus.MAX_SAMPLES
            prometheus.MAX_SAMPLES = 3
            local ok = prometheus.parse("a 1\nb 1\nc 1\n")
            local scrape, err = prometheus.parse("a 1\nb 1\nc 1\nd 1\n")
            prometheus.MAX_SAMPLES = saved
            assert.is_table(ok)
            assert.is_nil(scrape)
            assert.are.equal("line 4: more than 3 samples", err)
        end)
    end)
end)
