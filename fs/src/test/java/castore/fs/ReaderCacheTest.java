package castore.fs;

import static org.assertj.core.api.Assertions.assertThat;

import castore.fuse.api.FuseException;
import castore.hash.Blake3;
import castore.model.FileNode;
import castore.service.BlobReader;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Handle-less readers: bounded, and never closed under a read that uses them. */
class ReaderCacheTest {
    final List<Inode> closed = new ArrayList<>();
    int opened;

    Inode inode(long id) {
        var node = new FileNode(Blake3.digest(new byte[] {(byte) id}), 1, false);
        return new Inode(id, node, node, InodeNumbers.of(node), 1);
    }

    OpenFile open(Inode inode) {
        opened++;
        return new OpenFile(inode, new BlobReader() {
            @Override
            public long size() {
                return 1;
            }

            @Override
            public int read(long position, ByteBuffer dst) {
                dst.put((byte) 7);
                return 1;
            }

            @Override
            public void close() {
                closed.add(inode);
            }
        }, 1, 0, () -> false);
    }

    @Test
    void evictsTheLeastRecentlyUsedAndClosesInUseReadersOnlyAtTheirLastRelease() throws FuseException {
        var cache = new ReaderCache(2);
        Inode a = inode(2), b = inode(3), c = inode(4);
        OpenFile fa = cache.acquire(a, this::open);
        cache.release(fa);
        OpenFile fb = cache.acquire(b, this::open); // b stays in use
        assertThat(cache.acquire(a, this::open)).as("cached").isSameAs(fa);
        cache.release(fa);
        assertThat(opened).isEqualTo(2);

        OpenFile fc = cache.acquire(c, this::open); // evicts b (least recently used), still in use
        assertThat(cache.size()).isEqualTo(2);
        assertThat(closed).isEmpty();
        cache.release(fb);
        assertThat(closed).containsExactly(b);

        cache.release(fc);
        OpenFile fb2 = cache.acquire(b, this::open); // evicts a, unused: closed at once
        assertThat(fb2).isNotSameAs(fb);
        assertThat(closed).containsExactly(b, a);
        cache.release(fb2);
        cache.clear();
        assertThat(closed).containsExactlyInAnyOrder(b, a, c, b);
    }
}
