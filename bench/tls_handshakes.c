/* tls_handshakes: full TLS handshakes per second against one server. Each of C connections in
 * turn connects, runs a full handshake (a fresh SSL object, no session offered, so never a
 * resumption), sends one GET with "Connection: close", reads the response to the server's close,
 * and starts over. One thread, epoll, non-blocking: the client spends its CPU on the handshake's
 * own cryptography (and the kernel's TCP), nothing else, so the server's core is what it loads.
 *
 *   cc -O2 -o tls_handshakes tls_handshakes.c -lssl -lcrypto
 *   tls_handshakes HOST PORT PATH CONNS SECONDS [SIGALGS]
 *
 * SIGALGS (optional, e.g. "ECDSA+SHA256" or "RSA-PSS+SHA256:rsa_pss_rsae_sha256") restricts the
 * signature algorithms offered, which picks the certificate of a server holding several.
 * Prints one line: "handshakes N errors E seconds S" (handshakes = responses read to the end). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { kConnecting, kHandshaking, kWriting, kReading };

struct Conn {
  int fd;
  SSL* ssl;
  int state;
  size_t sent;
  size_t got;
};

static SSL_CTX* ctx;
static struct sockaddr_in addr;
static int ep;
static char request[512];
static size_t requestLen;
static long handshakes, errors;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void closeConn(struct Conn* c) {
  if (c->ssl) SSL_free(c->ssl);
  c->ssl = NULL;
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
  ERR_clear_error();
}

static void openConn(struct Conn* c) {
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) {
    perror("socket");
    exit(1);
  }
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  c->ssl = SSL_new(ctx);
  SSL_set_fd(c->ssl, c->fd);
  SSL_set_connect_state(c->ssl);
  c->sent = c->got = 0;
  c->state = kConnecting;
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c};
  epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
  if (connect(c->fd, (struct sockaddr*)&addr, sizeof addr) == 0) c->state = kHandshaking;
  else if (errno != EINPROGRESS) {
    ++errors;
    closeConn(c);
  }
}

/* Advances one connection as far as it goes without blocking; 1 when it finished (either way). */
static int step(struct Conn* c) {
  for (;;) {
    if (c->state == kConnecting) {
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err == EINPROGRESS) return 0;
      if (err) return ++errors, 1;
      c->state = kHandshaking;
    }
    if (c->state == kHandshaking) {
      int rc = SSL_do_handshake(c->ssl);
      if (rc != 1) {
        int e = SSL_get_error(c->ssl, rc);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
        /* A connect still in progress shows as a syscall error with EAGAIN/ENOTCONN. */
        if (e == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == ENOTCONN)) return 0;
        return ++errors, 1;
      }
      c->state = kWriting;
    }
    if (c->state == kWriting) {
      size_t n = 0;
      int rc = SSL_write_ex(c->ssl, request + c->sent, requestLen - c->sent, &n);
      if (rc != 1) {
        int e = SSL_get_error(c->ssl, rc);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
        return ++errors, 1;
      }
      c->sent += n;
      if (c->sent < requestLen) continue;
      c->state = kReading;
    }
    if (c->state == kReading) {
      char buf[16384];
      size_t n = 0;
      int rc = SSL_read_ex(c->ssl, buf, sizeof buf, &n);
      if (rc == 1) {
        if (c->got == 0 && (n < 12 || memcmp(buf + 9, "200", 3) != 0)) return ++errors, 1;
        c->got += n;
        continue;
      }
      int e = SSL_get_error(c->ssl, rc);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
      /* close_notify, or the server's close without one: the response ended. */
      if (c->got > 0) ++handshakes;
      else ++errors;
      return 1;
    }
  }
}

int main(int argc, char** argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: %s HOST PORT PATH CONNS SECONDS [SIGALGS]\n", argv[0]);
    return 2;
  }
  int conns = atoi(argv[4]);
  double seconds = atof(argv[5]);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((unsigned short)atoi(argv[2]));
  inet_pton(AF_INET, argv[1], &addr.sin_addr);
  requestLen = (size_t)snprintf(request, sizeof request,
                                "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", argv[3],
                                argv[1]);
  ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
  /* Every connection a full handshake: no client session cache, no ticket asked for. */
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  if (argc > 6 && SSL_CTX_set1_sigalgs_list(ctx, argv[6]) != 1) {
    fprintf(stderr, "bad SIGALGS %s\n", argv[6]);
    return 2;
  }
  ep = epoll_create1(EPOLL_CLOEXEC);
  struct Conn* all = calloc((size_t)conns, sizeof *all);
  for (int i = 0; i < conns; ++i) {
    all[i].fd = -1;
    openConn(&all[i]);
  }
  double start = now(), end = start + seconds;
  struct epoll_event events[256];
  while (now() < end) {
    int n = epoll_wait(ep, events, 256, 100);
    for (int i = 0; i < n; ++i) {
      struct Conn* c = events[i].data.ptr;
      if (c->fd < 0) continue;
      if (step(c)) {
        closeConn(c);
        openConn(c);
      }
    }
  }
  double elapsed = now() - start;
  printf("handshakes %ld errors %ld seconds %.3f\n", handshakes, errors, elapsed);
  return 0;
}
