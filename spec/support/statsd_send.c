/* statsd_send: sends StatsD lines as a client library would, packed into datagrams, for
 * the specs and the bench.
 * usage: statsd_send ADDRESS [-b BYTES] [-n COUNT -f FORMAT]
 * ADDRESS is HOST:PORT (UDP) or unix:PATH (a Unix datagram socket). Lines come from
 * stdin, or with -n are COUNT lines printed from FORMAT with the line's number (%d, from
 * 0). Each datagram holds whole lines, BYTES at most (default 1400). Prints the lines and
 * datagrams sent. */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int sock;
static char buf[65536];
static size_t used, cap = 1400;
static long lines, datagrams;

static void flush_datagram(void)
{
    if (used == 0)
        return;
    if (send(sock, buf, used, 0) < 0) {
        perror("send");
        exit(1);
    }
    datagrams++;
    used = 0;
}

static void add(const char *line, size_t len)
{
    if (used > 0 && used + 1 + len > cap)
        flush_datagram();
    if (used > 0)
        buf[used++] = '\n';
    if (len > sizeof buf - used)
        len = sizeof buf - used;
    memcpy(buf + used, line, len);
    used += len;
    lines++;
}

static int connect_to(const char *addr)
{
    if (strncmp(addr, "unix:", 5) == 0) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", addr + 5);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
            return -1;
        return fd;
    }
    char host[256];
    const char *colon = strrchr(addr, ':');
    struct addrinfo hints = {.ai_socktype = SOCK_DGRAM}, *res;
    int fd;
    if (colon == NULL || (size_t)(colon - addr) >= sizeof host)
        return -1;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0)
        return -1;
    fd = socket(res->ai_family, SOCK_DGRAM, 0);
    if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) < 0)
        fd = -1;
    freeaddrinfo(res);
    return fd;
}

int main(int argc, char **argv)
{
    long count = -1, i;
    const char *format = NULL;
    char line[4096];
    int opt;

    while ((opt = getopt(argc, argv, "b:n:f:")) != -1) {
        if (opt == 'b')
            cap = (size_t)atol(optarg);
        else if (opt == 'n')
            count = atol(optarg);
        else if (opt == 'f')
            format = optarg;
        else
            return 2;
    }
    if (optind != argc - 1 || cap < 1 || cap > sizeof buf || (count >= 0) != (format != NULL)) {
        fprintf(stderr, "usage: statsd_send ADDRESS [-b BYTES] [-n COUNT -f FORMAT]\n");
        return 2;
    }
    if ((sock = connect_to(argv[optind])) < 0) {
        perror(argv[optind]);
        return 1;
    }
    if (count >= 0) {
        for (i = 0; i < count; i++) {
            int n = snprintf(line, sizeof line, format, i);
            add(line, (size_t)n);
        }
    } else {
        while (fgets(line, sizeof line, stdin) != NULL) {
            size_t n = strcspn(line, "\n");
            add(line, n);
        }
    }
    flush_datagram();
    printf("%ld lines, %ld datagrams\n", lines, datagrams);
    return 0;
}
