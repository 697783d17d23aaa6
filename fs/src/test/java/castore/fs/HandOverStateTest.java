package castore.fs;

import static castore.fs.CastoreFileSystemTest.REQ;
import static castore.fs.CastoreFileSystemTest.ROOT;
import static castore.fs.CastoreFileSystemTest.assertErrno;
import static castore.fs.CastoreFileSystemTest.bytes;
import static castore.fs.CastoreFileSystemTest.explicitOpens;
import static castore.fs.CastoreFileSystemTest.lookup;
import static castore.fs.CastoreFileSystemTest.walk;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import castore.fuse.api.Entry;
import castore.fuse.api.Errno;
import castore.service.memory.MemoryBlobService;
import castore.service.memory.MemoryDirectoryService;
import castore.service.memory.MemoryRootService;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * The state a mount hands to the process that takes it over ({@link CastoreFileSystem#handOverState},
 * {@link CastoreFileSystem#takeOverState}): node ids, lookup counts and handles carry over, and a
 * state that does not fit is refused with the reason. Real mounts: the cli's TakeOverTest.
 */
class HandOverStateTest {
    final MemoryBlobService blobs = new MemoryBlobService();
    final MemoryDirectoryService directories = new MemoryDirectoryService();
    final MemoryRootService roots = new MemoryRootService();
    final Trees trees = new Trees(blobs, directories, roots);

    CastoreFileSystem fs(FsOptions options) {
        return new CastoreFileSystem(blobs, directories, roots, options);
    }

    @Test
    void nodeIdsLookupCountsAndHandlesCarryOver() throws Exception {
        trees.root("t", trees.dir("a", trees.dir("f", trees.file("deep\n")), "same", trees.file("deep\n"),
                "link", Trees.link("a/f")));
        trees.root("top", trees.file("top\n"));
        trees.root("other", trees.file("other\n"));
        CastoreFileSystem before = fs(explicitOpens());
        Entry f = walk(before, "t/a/f");
        walk(before, "t/a/f"); // two lookups of each on the path
        Entry same = walk(before, "t/same");
        Entry link = walk(before, "t/link");
        Entry top = lookup(before, ROOT, "top");
        long handle = before.open(REQ, f.nodeId(), 0).fileHandle();
        assertThat(handle).isPositive();
        int held = before.inodeCount();

        CastoreFileSystem after = fs(explicitOpens());
        after.takeOverState(before.handOverState());
        assertThat(after.inodeCount()).isEqualTo(held);
        assertThat(after.openFileCount()).isEqualTo(1);
        // The same ids answer as before: attributes, contents through the open handle, a listing.
        assertThat(after.getattr(REQ, f.nodeId()).attr()).isEqualTo(before.getattr(REQ, f.nodeId()).attr());
        assertThat(same.nodeId()).as("identical files share a node id").isEqualTo(f.nodeId());
        ByteBuffer dst = ByteBuffer.allocate(16);
        after.read(REQ, f.nodeId(), handle, 0, dst);
        assertThat(new String(dst.array(), 0, dst.position(), StandardCharsets.UTF_8)).isEqualTo("deep\n");
        assertThat(after.readlink(REQ, link.nodeId())).isEqualTo(bytes("a/f"));
        assertThat(after.getattr(REQ, top.nodeId()).attr().size()).isEqualTo(4);
        // A lookup of held content gives the held id, a new one an id past every held id.
        assertThat(walk(after, "t/a/f").nodeId()).isEqualTo(f.nodeId());
        long maxHeld = Math.max(Math.max(f.nodeId(), link.nodeId()), Math.max(top.nodeId(), walk(before, "t/a").nodeId()));
        assertThat(lookup(after, ROOT, "other").nodeId()).isGreaterThan(maxHeld);
        // Lookup counts came along: two walks and "same" before, one walk here.
        after.release(REQ, f.nodeId(), handle);
        after.forget(f.nodeId(), 3);
        assertThat(after.getattr(REQ, f.nodeId())).isNotNull();
        after.forget(f.nodeId(), 1);
        assertErrno(Errno.ENOENT, () -> after.getattr(REQ, f.nodeId()));
    }

    @Test
    void aStoreWithoutTheMountsRootsIsRefused() throws Exception {
        trees.root("t", trees.dir("x", trees.file("x")));
        CastoreFileSystem before = fs(FsOptions.defaults());
        walk(before, "t/x");
        CastoreFileSystem elsewhere = new CastoreFileSystem(new MemoryBlobService(), new MemoryDirectoryService(),
                new MemoryRootService(), FsOptions.defaults());
        assertThatThrownBy(() -> elsewhere.takeOverState(before.handOverState()))
                .isInstanceOf(IOException.class)
                .hasMessageStartingWith("this store lacks root 't' (directory b3:")
                .hasMessageEndingWith(", which the mount serves: take over with the store it was mounted from");
    }

    @Test
    void aDamagedOrForeignStateIsRefused() throws Exception {
        trees.root("t", trees.dir("x", trees.file("x")));
        CastoreFileSystem before = fs(FsOptions.defaults());
        walk(before, "t/x");
        byte[] state = before.handOverState();
        assertThatThrownBy(() -> fs(FsOptions.defaults()).takeOverState(Arrays.copyOf(state, state.length - 3)))
                .isInstanceOf(IOException.class).hasMessage("the mount state is cut short");
        byte[] foreign = state.clone();
        foreign[3] ^= 1;
        assertThatThrownBy(() -> fs(FsOptions.defaults()).takeOverState(foreign))
                .isInstanceOf(IOException.class).hasMessage("the mount state is of another castore version");
        byte[] longer = Arrays.copyOf(state, state.length + 1);
        assertThatThrownBy(() -> fs(FsOptions.defaults()).takeOverState(longer))
                .isInstanceOf(IOException.class).hasMessage("the mount state has bytes past its end");
    }
}
