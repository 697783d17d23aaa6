package castore.fs;

import castore.model.B3Digest;
import castore.model.DirectoryNode;
import castore.model.FileNode;
import castore.model.InvalidDataException;
import castore.model.Name;
import castore.model.Node;
import castore.model.SymlinkNode;
import java.io.IOException;
import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * What a mount hands to the process that takes it over ({@code castore mount --take-over}): the
 * node ids the kernel holds, with their lookup counts and what they name, and the open handles.
 * Node ids are allocated, not derived, so the new process must know each one the kernel may still
 * send; st_ino values are derived from content and need no state. A compact binary form of our
 * own (not proto Nodes: builders and parsers for 63k nodes took 75-92 ms at each end while
 * requests waited); nodes are validated again when read. Versioned: a process refuses a state it
 * does not know.
 */
record MountState(long nextNodeId, long nextHandle, List<HeldNode> nodes, List<OpenHandle> openFiles,
                  List<Long> rootListings) {
    private static final int MAGIC = 0x43465332; // "CFS2"
    private static final byte FILE = 0;
    private static final byte EXECUTABLE = 1;
    private static final byte DIRECTORY = 2;
    private static final byte SYMLINK = 3;
    private static final byte LISTED_BARE = 1;
    private static final byte PLACED = 2;

    /**
     * One node id: {@code placedIn} is the node id of the directory it was looked up in for a
     * directory (node ids of directories are per place, and {@code name} is its name there), 0
     * for files and symlinks (per content; {@code name} null).
     */
    record HeldNode(long id, long parentIno, long lookups, int opens, boolean listedBare, long placedIn, Name name,
                    Node node) {
    }

    record OpenHandle(long handle, long nodeId) {
    }

    byte[] encode() {
        long size = 4 + 8 + 8 + 4 + 4 + 16L * openFiles.size() + 4 + 8L * rootListings.size();
        for (HeldNode n : nodes) {
            size += 8 + 8 + 8 + 4 + 1 + (n.placedIn != 0 ? 8 + 2 + n.name.length() : 0) + 1 + switch (n.node) {
                case SymlinkNode l -> 4 + l.target().size();
                default -> B3Digest.LENGTH + 8;
            };
        }
        ByteBuffer out = ByteBuffer.allocate(Math.toIntExact(size));
        out.putInt(MAGIC).putLong(nextNodeId).putLong(nextHandle).putInt(nodes.size());
        byte[] digest = new byte[B3Digest.LENGTH];
        for (HeldNode n : nodes) {
            write(out, n, digest);
        }
        out.putInt(openFiles.size());
        for (OpenHandle h : openFiles) {
            out.putLong(h.handle).putLong(h.nodeId);
        }
        out.putInt(rootListings.size());
        for (long handle : rootListings) {
            out.putLong(handle);
        }
        return out.array();
    }

    // One node per call, in methods of their own: a process runs this once, and the JIT compiles
    // a method called a few hundred times long before it compiles a loop that ran as long.
    private static void write(ByteBuffer out, HeldNode n, byte[] digest) {
        out.putLong(n.id).putLong(n.parentIno).putLong(n.lookups).putInt(n.opens)
                .put((byte) ((n.listedBare ? LISTED_BARE : 0) | (n.placedIn != 0 ? PLACED : 0)));
        if (n.placedIn != 0) {
            out.putLong(n.placedIn).putShort((short) n.name.length()).put(n.name.bytesUnsafe());
        }
        switch (n.node) {
            case FileNode f -> {
                f.digest().copyTo(digest, 0);
                out.put(f.executable() ? EXECUTABLE : FILE).put(digest).putLong(f.size());
            }
            case DirectoryNode d -> {
                d.digest().copyTo(digest, 0);
                out.put(DIRECTORY).put(digest).putLong(d.size());
            }
            case SymlinkNode l -> out.put(SYMLINK).putInt(l.target().size()).put(l.target().toByteArray());
        }
    }

    private static HeldNode read(ByteBuffer in) throws IOException {
        long id = in.getLong();
        long parentIno = in.getLong();
        long lookups = in.getLong();
        int opens = in.getInt();
        byte flags = in.get();
        long placedIn = 0;
        Name name = null;
        if ((flags & PLACED) != 0) {
            placedIn = in.getLong();
            name = Name.of(bytes(in, in.getShort() & 0xffff));
        }
        byte kind = in.get();
        Node node = switch (kind) {
            case FILE, EXECUTABLE -> new FileNode(B3Digest.wrap(bytes(in, B3Digest.LENGTH)), in.getLong(), kind == EXECUTABLE);
            case DIRECTORY -> new DirectoryNode(B3Digest.wrap(bytes(in, B3Digest.LENGTH)), in.getLong());
            case SYMLINK -> SymlinkNode.of(bytes(in, count(in)));
            default -> throw new IOException("the mount state is damaged (a node of kind " + kind + ")");
        };
        if (name == null ? node instanceof DirectoryNode : !(node instanceof DirectoryNode)) {
            throw new IOException("the mount state is damaged (a directory without its place, or a place without a directory)");
        }
        return new HeldNode(id, parentIno, lookups, opens, (flags & LISTED_BARE) != 0, placedIn, name, node);
    }

    static MountState decode(byte[] state) throws IOException {
        ByteBuffer in = ByteBuffer.wrap(state);
        try {
            if (in.getInt() != MAGIC) {
                throw new IOException("the mount state is of another castore version");
            }
            long nextNodeId = in.getLong();
            long nextHandle = in.getLong();
            int count = count(in);
            List<HeldNode> nodes = new ArrayList<>(Math.min(count, state.length / 30));
            for (int i = 0; i < count; i++) {
                nodes.add(read(in));
            }
            count = count(in);
            List<OpenHandle> open = new ArrayList<>(Math.min(count, 1 << 16));
            for (int i = 0; i < count; i++) {
                open.add(new OpenHandle(in.getLong(), in.getLong()));
            }
            count = count(in);
            List<Long> listings = new ArrayList<>(Math.min(count, 1 << 16));
            for (int i = 0; i < count; i++) {
                listings.add(in.getLong());
            }
            if (in.hasRemaining()) {
                throw new IOException("the mount state has bytes past its end");
            }
            return new MountState(nextNodeId, nextHandle, nodes, open, listings);
        } catch (BufferUnderflowException e) {
            throw new IOException("the mount state is cut short");
        } catch (InvalidDataException e) {
            throw new IOException("the mount state holds an invalid node: " + e.getMessage());
        }
    }

    private static byte[] bytes(ByteBuffer in, int length) {
        if (length > in.remaining()) {
            throw new BufferUnderflowException();
        }
        byte[] bytes = new byte[length];
        in.get(bytes);
        return bytes;
    }

    private static int count(ByteBuffer in) throws IOException {
        int n = in.getInt();
        if (n < 0) {
            throw new IOException("the mount state is damaged (a negative count)");
        }
        return n;
    }
}
