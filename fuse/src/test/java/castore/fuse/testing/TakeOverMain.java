package castore.fuse.testing;

import castore.fuse.sys.Libc;
import castore.fuse.transport.FuseMount;
import castore.fuse.transport.MountOptions;
import java.io.IOException;
import java.nio.file.Path;

/**
 * A process that takes over the mount at {@code args[0]} ({@link FuseMount#takeOver}) with the
 * tree {@link MountMain} serves: prints "took over from PID", then unmounts at once, or with
 * {@code args[1] = "serve"} serves until SIGTERM and prints "unmounted". On failure it prints
 * "error: " and the reason, and exits 1.
 */
public final class TakeOverMain {
    private TakeOverMain() {
    }

    public static void main(String[] args) throws Exception {
        MemoryFileSystem fs = MemoryFileSystem.builder().file("hello.txt", "hello from uid " + Libc.getuid() + "\n").build();
        try (FuseMount mount = FuseMount.takeOver(Path.of(args[0]), fs, MountOptions.defaults())) {
            System.out.println("took over from " + mount.takenFrom());
            System.out.flush();
            if (args.length > 1 && args[1].equals("serve")) {
                mount.unmountOnSignals();
                mount.awaitUnmount();
                System.out.println("unmounted");
            }
        } catch (IOException e) {
            System.out.println("error: " + e.getMessage());
            System.exit(1);
        }
    }
}
