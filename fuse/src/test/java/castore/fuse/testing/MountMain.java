package castore.fuse.testing;

import castore.fuse.sys.Libc;
import castore.fuse.transport.FuseMount;
import castore.fuse.transport.MountOptions;

import java.nio.file.Path;

/**
 * A daemon for process-level tests: mounts a tiny {@link MemoryFileSystem} on {@code args[0]},
 * prints "mounted", serves until unmounted (SIGINT/SIGTERM unmount it), prints "unmounted" and
 * exits 0. With {@code "fusermount"} among the further arguments it mounts through fusermount3
 * even as root; with {@code "take-overs"} it lets another process take the mount over
 * ({@link FuseMount#acceptTakeOvers}) and then prints "handed over to PID".
 */
public final class MountMain {
    private MountMain() {
    }

    public static void main(String[] args) throws Exception {
        Path mountpoint = Path.of(args[0]);
        MountOptions options = MountOptions.defaults().withFsName("castore-child");
        java.util.List<String> flags = java.util.List.of(args).subList(1, args.length);
        if (flags.contains("fusermount")) {
            options = options.withMethod(MountOptions.MountMethod.FUSERMOUNT);
        }
        MemoryFileSystem fs = MemoryFileSystem.builder()
                .file("hello.txt", "hello from uid " + Libc.getuid() + "\n")
                .build();
        try (FuseMount mount = FuseMount.mount(mountpoint, fs, options).unmountOnSignals()) {
            if (flags.contains("take-overs")) {
                fs.handsOver(new byte[0]);
                mount.acceptTakeOvers();
            }
            System.out.println("mounted " + mount.mountpoint());
            System.out.flush();
            mount.awaitUnmount();
            if (mount.handedTo() != 0) {
                System.out.println("handed over to " + mount.handedTo());
                return;
            }
        }
        System.out.println("unmounted destroyed=" + fs.isDestroyed());
    }
}
