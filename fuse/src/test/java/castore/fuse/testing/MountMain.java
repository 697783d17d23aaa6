package castore.fuse.testing;

import castore.fuse.sys.Libc;
import castore.fuse.transport.FuseMount;
import castore.fuse.transport.MountOptions;

import java.nio.file.Path;

/**
 * A daemon for process-level tests: mounts a tiny {@link MemoryFileSystem} on {@code args[0]},
 * prints "mounted", serves until unmounted (SIGINT/SIGTERM unmount it), prints "unmounted" and
 * exits 0. With {@code args[1] = "fusermount"} it mounts through fusermount3 even as root.
 */
public final class MountMain {
    private MountMain() {
    }

    public static void main(String[] args) throws Exception {
        Path mountpoint = Path.of(args[0]);
        MountOptions options = MountOptions.defaults().withFsName("castore-child");
        if (args.length > 1 && args[1].equals("fusermount")) {
            options = options.withMethod(MountOptions.MountMethod.FUSERMOUNT);
        }
        MemoryFileSystem fs = MemoryFileSystem.builder()
                .file("hello.txt", "hello from uid " + Libc.getuid() + "\n")
                .build();
        try (FuseMount mount = FuseMount.mount(mountpoint, fs, options).unmountOnSignals()) {
            System.out.println("mounted " + mount.mountpoint());
            System.out.flush();
            mount.awaitUnmount();
        }
        System.out.println("unmounted destroyed=" + fs.isDestroyed());
    }
}
