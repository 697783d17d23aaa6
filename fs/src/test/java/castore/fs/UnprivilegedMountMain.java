package castore.fs;

import castore.fuse.transport.FuseMount;
import castore.fuse.transport.MountOptions;
import castore.service.memory.MemoryBlobService;
import castore.service.memory.MemoryDirectoryService;
import castore.service.memory.MemoryRootService;
import java.nio.file.Path;

/**
 * Run by {@link UnprivilegedMountTest} in a child JVM as an ordinary user: mounts a small castore
 * tree (through fusermount3, as the process is not root), makes 10 round trips through the
 * kernel, prints "ready after round trips: " and how many requests they made, serves until unmounted.
 */
public final class UnprivilegedMountMain {
    private UnprivilegedMountMain() {
    }

    public static void main(String[] args) throws Exception {
        var trees = new Trees(new MemoryBlobService(), new MemoryDirectoryService(), new MemoryRootService());
        trees.root("hello", trees.file("hello from an ordinary user\n"));
        trees.root("tree", trees.dir("a", trees.dir("b", trees.file("deep\n"))));
        var fs = new CastoreFileSystem(trees.blobs, trees.directories, trees.roots, FsOptions.defaults());
        try (FuseMount mount = FuseMount.mount(Path.of(args[0]), fs, MountOptions.defaults())) {
            // The warm-up's round trips work for a mount made through fusermount3 too.
            long before = mount.requestsReceived();
            for (int i = 0; i < 10; i++) {
                mount.roundTrip();
            }
            System.out.println("ready after round trips: " + (mount.requestsReceived() - before));
            System.out.flush();
            mount.awaitUnmount();
        }
    }
}
