package castore.fuse.testing;

import castore.fuse.transport.FuseMount;
import castore.fuse.transport.MountOptions;
import java.io.IOException;
import java.nio.file.Path;

/**
 * A process that tries to take over the mount at {@code args[0]} ({@link FuseMount#takeOver}) with
 * a {@link MemoryFileSystem}: prints "took over" and unmounts, or prints the error and exits 1.
 */
public final class TakeOverMain {
    private TakeOverMain() {
    }

    public static void main(String[] args) throws Exception {
        MemoryFileSystem fs = MemoryFileSystem.builder().file("hello.txt", "hello\n").build();
        try (FuseMount mount = FuseMount.takeOver(Path.of(args[0]), fs, MountOptions.defaults())) {
            System.out.println("took over from " + mount.takenFrom());
        } catch (IOException e) {
            System.out.println("error: " + e.getMessage());
            System.exit(1);
        }
    }
}
