/* Test-only probe, built static by tests/engine/test_sandbox.py and planted in a tree as the
 * command a stage runs chrooted (update-ca-trust). It leaves the chroot (root with CAP_SYS_CHROOT
 * can), then reports what of the sandbox it can reach: one "key<TAB>value" line per check. */
#include <dirent.h>
#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef PORT
#define PORT 1
#endif

static void try_write(const char *path) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        printf("%s\t%s\n", path, strerror(errno));
        return;
    }
    if (write(fd, "probe\n", 6) != 6) printf("%s\tshort\n", path);
    else printf("%s\tok\n", path);
    close(fd);
}

int main(void) {
    /* out of the chroot into the sandbox's own root */
    mkdir("/.probe-escape", 0700);
    if (chroot("/.probe-escape") == 0) {
        for (int i = 0; i < 64; i++) chdir("..");
        chroot(".");
    }
    printf("escaped\t%s\n", access("/run/osbuild/tree", F_OK) == 0 ? "yes" : "no");
    try_write("/etc/osbuildd-probe");
    try_write("/usr/osbuildd-probe");
    try_write("/run/osbuildd-probe");
    try_write("/root/osbuildd-probe");
    try_write("/run/osbuild/tree/probe-tree-ok");
    try_write("/run/osbuild/lib/osbuildd/probe");
    printf("hostpath /var/lib\t%s\n", access("/var/lib/dpkg", F_OK) == 0 ? "visible" : "absent");
    printf("hostpath /work\t%s\n", access("/work", F_OK) == 0 ? "visible" : "absent");
    int procs = 0;
    DIR *d = opendir("/proc");
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)))
            if (e->d_name[0] >= '0' && e->d_name[0] <= '9') procs++;
        closedir(d);
    }
    printf("procs\t%d\n", procs);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(PORT)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(s, (struct sockaddr *)&a, sizeof a) == 0) printf("connect\tok\n");
    else printf("connect\t%s\n", strerror(errno));
    fflush(stdout);
    return 0;
}
