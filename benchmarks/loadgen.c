/*
 * securetcp benchmark load generator (and plaintext echo backend).
 *
 * Compiled at run time by the harness (benchmarks/_build.py):
 *     gcc -O2 -o loadgen loadgen.c -lssl -lcrypto
 *
 * Modes (arguments are key=value; every mode prints one JSON object):
 *
 *   loadgen backend port=P
 *       a single-threaded epoll plaintext echo server on 127.0.0.1:P;
 *       prints {"ready":true} once listening, runs until killed.
 *   loadgen hs port=P n=N version=13|12 [cert=F key=F] [resume=1]
 *       N sequential connections: connect, TLS handshake, 1-byte echo,
 *       close_notify, close.  With resume=1 each connection offers the
 *       session (ticket) of the previous one.  Reports how many completed,
 *       how many resumed, and per-connection latencies.
 *   loadgen bulk port=P bytes=B version=13 [cert=F key=F]
 *       one connection; streams B bytes in 16 KiB records and reads the
 *       echo back concurrently (non-blocking, poll).
 *   loadgen echo port=P n=N size=S version=13 [cert=F key=F] [plain=1]
 *       one connection; N round trips of S bytes (write S, read S); with
 *       plain=1 over plain TCP, without TLS (a proxy's cost without TLS).
 *   loadgen idle port=P n=N version=13 [cert=F key=F]
 *       opens N connections (handshake + 1-byte echo each), prints
 *       {"ready":...}, waits for a line (or EOF) on stdin, then closes all.
 *
 * Everything connects to 127.0.0.1 only; every blocking socket has a
 * 15 second timeout, so nothing waits for ever.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

static const char *arg(int argc, char **argv, const char *name, const char *dflt)
{
    size_t len = strlen(name);
    for (int i = 2; i < argc; i++) {
        if (strncmp(argv[i], name, len) == 0 && argv[i][len] == '=')
            return argv[i] + len + 1;
    }
    return dflt;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* Source addresses 127.0.0.2 .. 127.0.0.(1 + g_sources) in turn (0: let
 * the kernel choose): one source address has about 28,000 ephemeral ports
 * towards one server port, so 100,000 connections need several. */
static int g_sources = 0;
static unsigned g_next_source = 0;

static int tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (g_sources > 0) {
        struct sockaddr_in src;
        memset(&src, 0, sizeof src);
        src.sin_family = AF_INET;
        src.sin_addr.s_addr = htonl(0x7f000002u + (g_next_source++ % (unsigned)g_sources));
        /* the port is chosen at connect(), per destination: the whole
         * ephemeral range per source address */
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(fd, (struct sockaddr *)&src, sizeof src) != 0) {
            close(fd);
            return -1;
        }
    }
    struct timeval tv = {15, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static SSL_CTX *make_ctx(int version, const char *cert, const char *key)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    int v = version == 12 ? TLS1_2_VERSION : TLS1_3_VERSION;
    SSL_CTX_set_min_proto_version(ctx, v);
    SSL_CTX_set_max_proto_version(ctx, v);
    /* every server does the same key exchange: ECDHE on P-256 only */
    SSL_CTX_set1_groups_list(ctx, "P-256");
    /* ... and the same AEAD: AES-128-GCM */
    SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256");
    SSL_CTX_set_cipher_list(ctx, "ECDHE-ECDSA-AES128-GCM-SHA256");
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (cert && *cert) {
        if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
            SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
            fprintf(stderr, "loadgen: cannot load %s / %s\n", cert, key);
            ERR_print_errors_fp(stderr);
            exit(2);
        }
    }
    return ctx;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p)
{
    if (n == 0)
        return 0;
    int i = (int)(p * (n - 1) + 0.5);
    return v[i];
}

static const char *group_name(SSL *ssl)
{
    int nid = SSL_get_negotiated_group(ssl);
    const char *name = nid > 0 ? OBJ_nid2sn(nid) : NULL;
    return name ? name : "?";
}

/* One connection: handshake, 1-byte echo.  Returns the SSL (caller frees)
 * or NULL; fills t_hs (handshake done) and t_first (echo byte back). */
static SSL *open_one(SSL_CTX *ctx, int port, SSL_SESSION *sess, double *t_hs, double *t_first)
{
    int fd = tcp_connect(port);
    if (fd < 0)
        return NULL;
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    if (sess)
        SSL_set_session(ssl, sess);
    if (SSL_connect(ssl) != 1) {
        SSL_free(ssl);
        close(fd);
        return NULL;
    }
    if (t_hs)
        *t_hs = now();
    char c = 'x';
    if (SSL_write(ssl, &c, 1) != 1 || SSL_read(ssl, &c, 1) != 1) {
        SSL_free(ssl);
        close(fd);
        return NULL;
    }
    if (t_first)
        *t_first = now();
    return ssl;
}

static void close_one(SSL *ssl)
{
    int fd = SSL_get_fd(ssl);
    SSL_shutdown(ssl);
    SSL_free(ssl);
    close(fd);
}

static int mode_hs(int argc, char **argv)
{
    int port = atoi(arg(argc, argv, "port", "0"));
    int n = atoi(arg(argc, argv, "n", "100"));
    int version = atoi(arg(argc, argv, "version", "13"));
    int resume = atoi(arg(argc, argv, "resume", "0"));
    SSL_CTX *ctx = make_ctx(version, arg(argc, argv, "cert", NULL), arg(argc, argv, "key", NULL));
    double *lat_hs = calloc(n, sizeof(double)), *lat_first = calloc(n, sizeof(double));
    int ok = 0, failed = 0, resumed = 0;
    SSL_SESSION *sess = NULL;
    char group[64] = "?", cipher[64] = "?", proto[32] = "?";
    if (resume) { /* prime: one full handshake for the first ticket */
        SSL *ssl = open_one(ctx, port, NULL, NULL, NULL);
        if (ssl) {
            sess = SSL_get1_session(ssl);
            close_one(ssl);
        }
    }
    double start = now();
    for (int i = 0; i < n; i++) {
        double t0 = now(), t1 = 0, t2 = 0;
        SSL *ssl = open_one(ctx, port, sess, &t1, &t2);
        if (!ssl) {
            failed++;
            ERR_clear_error();
            if (failed > 20 && failed > n / 10)
                break;
            continue;
        }
        if (ok == 0) {
            snprintf(group, sizeof group, "%s", group_name(ssl));
            snprintf(cipher, sizeof cipher, "%s", SSL_get_cipher_name(ssl));
            snprintf(proto, sizeof proto, "%s", SSL_get_version(ssl));
        }
        if (SSL_session_reused(ssl))
            resumed++;
        if (resume) {
            SSL_SESSION *fresh = SSL_get1_session(ssl);
            if (fresh && SSL_SESSION_is_resumable(fresh)) {
                SSL_SESSION_free(sess);
                sess = fresh;
            } else if (fresh) {
                SSL_SESSION_free(fresh);
            }
        }
        close_one(ssl);
        lat_hs[ok] = (t1 - t0) * 1e6;
        lat_first[ok] = (t2 - t0) * 1e6;
        ok++;
    }
    double wall = now() - start;
    qsort(lat_hs, ok, sizeof(double), cmp_double);
    qsort(lat_first, ok, sizeof(double), cmp_double);
    printf("{\"ok\": %d, \"failed\": %d, \"resumed\": %d, \"wall_s\": %.6f, "
           "\"version\": \"%s\", \"cipher\": \"%s\", \"group\": \"%s\", "
           "\"handshake_us\": {\"p50\": %.1f, \"p99\": %.1f, \"max\": %.1f}, "
           "\"first_byte_us\": {\"p50\": %.1f, \"p99\": %.1f, \"max\": %.1f}}\n",
           ok, failed, resumed, wall, proto, cipher, group,
           pct(lat_hs, ok, 0.5), pct(lat_hs, ok, 0.99), ok ? lat_hs[ok - 1] : 0,
           pct(lat_first, ok, 0.5), pct(lat_first, ok, 0.99), ok ? lat_first[ok - 1] : 0);
    return ok > 0 ? 0 : 1;
}

static int mode_bulk(int argc, char **argv)
{
    int port = atoi(arg(argc, argv, "port", "0"));
    long long total = atoll(arg(argc, argv, "bytes", "67108864"));
    int version = atoi(arg(argc, argv, "version", "13"));
    SSL_CTX *ctx = make_ctx(version, arg(argc, argv, "cert", NULL), arg(argc, argv, "key", NULL));
    SSL *ssl = open_one(ctx, port, NULL, NULL, NULL);
    if (!ssl) {
        printf("{\"error\": \"connect\"}\n");
        return 1;
    }
    int fd = SSL_get_fd(ssl);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    static char out[16384], in[65536];
    memset(out, 'b', sizeof out);
    long long sent = 0, got = 0;
    double start = now(), deadline = start + 120;
    int want_write = 0, stalled = 0;
    while (got < total && now() < deadline) {
        int progress = 0;
        if (sent < total) {
            int chunk = total - sent < (long long)sizeof out ? (int)(total - sent) : (int)sizeof out;
            int r = SSL_write(ssl, out, chunk);
            if (r > 0) {
                sent += r;
                progress = 1;
                want_write = 0;
            } else {
                int e = SSL_get_error(ssl, r);
                if (e == SSL_ERROR_WANT_WRITE)
                    want_write = 1;
                else if (e != SSL_ERROR_WANT_READ)
                    break;
            }
        }
        for (int k = 0; k < 64; k++) {
            int r = SSL_read(ssl, in, sizeof in);
            if (r > 0) {
                got += r;
                progress = 1;
                continue;
            }
            int e = SSL_get_error(ssl, r);
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                goto done;
            break;
        }
        if (!progress) {
            struct pollfd p = {fd, POLLIN | (want_write ? POLLOUT : 0), 0};
            if (poll(&p, 1, 1000) == 0 && ++stalled > 15)
                break;
        } else {
            stalled = 0;
        }
    }
done:;
    double wall = now() - start;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    close_one(ssl);
    printf("{\"sent\": %lld, \"received\": %lld, \"wall_s\": %.6f}\n", sent, got, wall);
    return got == total ? 0 : 1;
}

static int read_full(SSL *ssl, char *buf, int size)
{
    int got = 0;
    while (got < size) {
        int r = SSL_read(ssl, buf + got, size - got);
        if (r <= 0)
            return -1;
        got += r;
    }
    return got;
}

/* Write or read exactly size bytes, over TLS (ssl) or plain TCP (fd);
 * -1 on an error or end of stream. */
static int echo_full(SSL *ssl, int fd, char *buf, int size, int writing)
{
    if (ssl)
        return writing ? (SSL_write(ssl, buf, size) == size ? size : -1)
                       : read_full(ssl, buf, size);
    int done = 0;
    while (done < size) {
        ssize_t r = writing ? write(fd, buf + done, size - done)
                            : read(fd, buf + done, size - done);
        if (r <= 0)
            return -1;
        done += (int)r;
    }
    return done;
}

static int mode_echo(int argc, char **argv)
{
    int port = atoi(arg(argc, argv, "port", "0"));
    int n = atoi(arg(argc, argv, "n", "1000"));
    int size = atoi(arg(argc, argv, "size", "16384"));
    int version = atoi(arg(argc, argv, "version", "13"));
    SSL *ssl = NULL;
    int fd;
    if (atoi(arg(argc, argv, "plain", "0"))) {
        fd = tcp_connect(port);
    } else {
        SSL_CTX *ctx = make_ctx(version, arg(argc, argv, "cert", NULL),
                                arg(argc, argv, "key", NULL));
        ssl = open_one(ctx, port, NULL, NULL, NULL);
        fd = ssl ? SSL_get_fd(ssl) : -1;
    }
    if (fd < 0) {
        printf("{\"error\": \"connect\"}\n");
        return 1;
    }
    char *out = malloc(size), *in = malloc(size);
    memset(out, 'e', size);
    double *lat = calloc(n, sizeof(double));
    int ok = 0;
    double start = now();
    for (int i = 0; i < n; i++) {
        double t0 = now();
        if (echo_full(ssl, fd, out, size, 1) != size || echo_full(ssl, fd, in, size, 0) != size)
            break;
        lat[ok++] = (now() - t0) * 1e6;
    }
    double wall = now() - start;
    if (ssl)
        close_one(ssl);
    else
        close(fd);
    qsort(lat, ok, sizeof(double), cmp_double);
    printf("{\"ok\": %d, \"size\": %d, \"wall_s\": %.6f, \"rtt_us\": {\"p50\": %.1f, \"p99\": %.1f}}\n",
           ok, size, wall, pct(lat, ok, 0.5), pct(lat, ok, 0.99));
    return ok == n ? 0 : 1;
}

static int mode_idle(int argc, char **argv)
{
    int port = atoi(arg(argc, argv, "port", "0"));
    int n = atoi(arg(argc, argv, "n", "2000"));
    int version = atoi(arg(argc, argv, "version", "13"));
    g_sources = atoi(arg(argc, argv, "sources", "0"));
    int progress = atoi(arg(argc, argv, "progress", "0"));
    raise_nofile();
    SSL_CTX *ctx = make_ctx(version, arg(argc, argv, "cert", NULL), arg(argc, argv, "key", NULL));
    /* the client's own memory per held connection stays small too */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL **all = calloc(n, sizeof(SSL *));
    int ok = 0, failed = 0;
    double start = now();
    for (int i = 0; i < n; i++) {
        SSL *ssl = open_one(ctx, port, NULL, NULL, NULL);
        if (!ssl) {
            if (++failed > 50)
                break;
            ERR_clear_error();
            continue;
        }
        all[ok++] = ssl;
        if (progress > 0 && ok % progress == 0) {
            printf("{\"opening\": %d, \"failed\": %d, \"open_s\": %.3f}\n", ok, failed,
                   now() - start);
            fflush(stdout);
        }
    }
    printf("{\"ready\": true, \"ok\": %d, \"failed\": %d, \"open_s\": %.3f}\n", ok, failed, now() - start);
    fflush(stdout);
    char line[64];
    if (!fgets(line, sizeof line, stdin))
        line[0] = 0;
    for (int i = 0; i < ok; i++) {
        int fd = SSL_get_fd(all[i]);
        SSL_free(all[i]);
        close(fd);
    }
    return 0;
}

/* -- plaintext echo backend ------------------------------------------- */

static int mode_backend(int argc, char **argv)
{
    int port = atoi(arg(argc, argv, "port", "0"));
    raise_nofile();
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(lfd, 4096) != 0) {
        perror("backend: bind/listen");
        return 1;
    }
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    printf("{\"ready\": true}\n");
    fflush(stdout);
    static char buf[262144];
    struct epoll_event evs[256];
    for (;;) {
        int k = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < k; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                for (;;) {
                    int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
                    if (c < 0)
                        break;
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
                }
                continue;
            }
            ssize_t r = read(fd, buf, sizeof buf);
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN)
                    continue;
                close(fd);
                continue;
            }
            /* echo everything back; block briefly if the peer is slow */
            ssize_t off = 0;
            while (off < r) {
                ssize_t w = write(fd, buf + off, r - off);
                if (w > 0) {
                    off += w;
                } else if (w < 0 && errno == EAGAIN) {
                    struct pollfd p = {fd, POLLOUT, 0};
                    if (poll(&p, 1, 15000) <= 0)
                        break;
                } else {
                    break;
                }
            }
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2) {
        fprintf(stderr, "usage: loadgen backend|hs|bulk|echo|idle key=value...\n");
        return 2;
    }
    const char *mode = argv[1];
    if (!strcmp(mode, "backend"))
        return mode_backend(argc, argv);
    if (!strcmp(mode, "hs"))
        return mode_hs(argc, argv);
    if (!strcmp(mode, "bulk"))
        return mode_bulk(argc, argv);
    if (!strcmp(mode, "echo"))
        return mode_echo(argc, argv);
    if (!strcmp(mode, "idle"))
        return mode_idle(argc, argv);
    fprintf(stderr, "loadgen: unknown mode %s\n", mode);
    return 2;
}
