/*
 * UDP syslog sender for the bench: the e2e stream (99% firewall lines, 1% DHCPACK with a distinct
 * address each) at a fixed rate, in sendmmsg(2) batches paced by the monotonic clock, so one core
 * reaches several hundred thousand datagrams/s (node's dgram tops out near 212k).
 * Usage: udp-sender PORT RATE COUNT   → prints "sent N seconds S" on stdout.
 * Built by bench/udp-e2e.ts with `cc -O2`.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static int line(char *buf, size_t cap, long i) {
  if (i % 100 == 0) {
    long k = i / 100;
    return snprintf(buf, cap, "<30>Nov 23 10:00:00 gw dhcpd[7]: DHCPACK on 10.%ld.%ld.%ld to 52:54:00:%02lx:%02lx:%02lx via eth0",
                    (k >> 16) & 255, (k >> 8) & 255, k & 255, (k >> 16) & 255, (k >> 8) & 255, k & 255);
  }
  return snprintf(buf, cap, "<134>Nov 23 10:00:00 fw01 filterlog[4242]: 5,,,1000000103,igb0,match,block,in,4,0x0,,64,%ld,0,DF,6,tcp,60,203.0.113.%ld,10.0.0.1,%ld,443,0,S,123456,,64240,,mss",
                  i % 65535, i % 250, 1024 + (i % 60000));
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s PORT RATE COUNT\n", argv[0]);
    return 2;
  }
  int port = atoi(argv[1]);
  double rate = atof(argv[2]);
  long count = atol(argv[3]);
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) return perror("socket"), 1;
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  if (connect(fd, (struct sockaddr *)&to, sizeof to) < 0) return perror("connect"), 1;
  static char bufs[BATCH][512];
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  memset(msgs, 0, sizeof msgs);
  double t0 = now();
  long sent = 0;
  while (sent < count) {
    int n = 0;
    for (; n < BATCH && sent + n < count; n++) {
      iov[n].iov_base = bufs[n];
      iov[n].iov_len = line(bufs[n], sizeof bufs[n], sent + n);
      msgs[n].msg_hdr.msg_iov = &iov[n];
      msgs[n].msg_hdr.msg_iovlen = 1;
    }
    int done = 0;
    while (done < n) {
      int r = sendmmsg(fd, msgs + done, n - done, 0);
      if (r < 0) continue; /* ENOBUFS/EAGAIN on loopback: try again (the datagram is not lost by us) */
      done += r;
    }
    sent += n;
    /* pace: the next batch leaves when the schedule says so */
    double due = t0 + sent / rate;
    double wait = due - now();
    if (wait > 0) {
      struct timespec ts = {.tv_sec = (time_t)wait, .tv_nsec = (long)((wait - (time_t)wait) * 1e9)};
      nanosleep(&ts, NULL);
    }
  }
  printf("sent %ld seconds %.3f\n", sent, now() - t0);
  return 0;
}
