package castore.fs;

import castore.model.B3Digest;
import castore.model.Directory;
import castore.model.DirectoryNode;
import castore.model.FileNode;
import castore.model.Node;
import castore.service.DirectoryService;
import java.io.IOException;
import java.util.ArrayDeque;
import java.util.HashSet;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Consumer;

/**
 * A {@link FsOptions#rootEntered} hook for {@code --prefetch} with {@code --passthrough}: when a
 * root is first entered, asks {@link PlainCopies} for a copy of every file of its tree that is
 * big enough, in listing order, so that even a file's first open can be read from its copy once
 * the background maker has got to it. Each root digest is walked once per mount, on a virtual
 * thread; a Directory that cannot be fetched ends its branch quietly (a real access reports it).
 * The maker's queue is bounded: requests past it are dropped, and those files ask again when opened.
 * The walk stops once the copies take no more requests (unmounted, or the kernel refuses them).
 */
public final class CopyAhead implements Consumer<DirectoryNode> {
    private final DirectoryService directories;
    private final PlainCopies copies;
    private final Set<B3Digest> walked = ConcurrentHashMap.newKeySet();

    public CopyAhead(DirectoryService directories, PlainCopies copies) {
        this.directories = directories;
        this.copies = copies;
    }

    @Override
    public void accept(DirectoryNode root) {
        if (walked.add(root.digest())) {
            Thread.ofVirtual().name("castore-copy-ahead").start(() -> walk(root));
        }
    }

    private void walk(DirectoryNode root) {
        ArrayDeque<B3Digest> pending = new ArrayDeque<>();
        Set<B3Digest> seen = new HashSet<>();
        pending.add(root.digest());
        while (!pending.isEmpty() && copies.acceptsRequests()) { // stops at unmount, or once copies are of no use
            B3Digest digest = pending.poll();
            Optional<Directory> directory;
            try {
                directory = directories.get(digest);
            } catch (IOException | RuntimeException e) {
                continue;
            }
            if (directory.isEmpty()) {
                continue;
            }
            Directory d = directory.get();
            for (int i = 0; i < d.entryCount(); i++) {
                Node node = d.node(i);
                if (node instanceof FileNode file && file.size() >= copies.minBytes()) {
                    copies.request(file.digest(), file.size());
                } else if (node instanceof DirectoryNode sub && seen.add(sub.digest())) {
                    pending.add(sub.digest());
                }
            }
        }
    }
}
