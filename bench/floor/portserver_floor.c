/* The portserver protocol's floor on this host: a server that answers every request with the
 * same port and does nothing else (no free check, no state, no owner). A client connects to a
 * Unix socket, writes its PID and a newline, reads a port and a newline; this server reads what
 * has arrived, writes "PORT\n" and closes. Built by the drop-in benchmark with the system cc:
 *
 *   cc -O2 -o portserver_floor portserver_floor.c
 *   ./portserver_floor @name-or-path 15000
 *
 * It stops after one idle minute, or when killed (the benchmark kills it). */

#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s @NAME|PATH PORT\n", argv[0]);
        return 64;
    }
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    size_t len = strlen(argv[1]);
    if (len == 0 || len >= sizeof addr.sun_path) {
        fprintf(stderr, "address too long\n");
        return 64;
    }
    memcpy(addr.sun_path, argv[1], len);
    socklen_t addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    if (argv[1][0] == '@') {
        addr.sun_path[0] = '\0'; /* the abstract namespace */
    } else {
        unlink(argv[1]);
        addr_len += 1;
    }
    int server = socket(AF_UNIX, SOCK_STREAM, 0);
    if (server < 0 || bind(server, (struct sockaddr *)&addr, addr_len) < 0 ||
        listen(server, 1024) < 0) {
        perror("listen");
        return 1;
    }
    char answer[16];
    int answer_len = snprintf(answer, sizeof answer, "%d\n", atoi(argv[2]));
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        struct pollfd p = {.fd = server, .events = POLLIN};
        if (poll(&p, 1, 60000) <= 0) {
            return 0; /* idle for a minute: the benchmark is gone */
        }
        int c = accept(server, NULL, NULL);
        if (c < 0) {
            continue;
        }
        char buf[32];
        ssize_t n = recv(c, buf, sizeof buf, 0); /* the PID line; its value is not used */
        if (n > 0) {
            (void)send(c, answer, (size_t)answer_len, MSG_NOSIGNAL);
        }
        close(c);
    }
}
