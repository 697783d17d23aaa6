package castore.fs;

import castore.model.InvalidDataException;
import castore.model.Name;
import castore.model.Node;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;

/**
 * What a mount hands to the process that takes it over ({@code castore mount --take-over}): the
 * node ids the kernel holds, with their lookup counts and what they name, and the open handles.
 * Node ids are allocated, not derived, so the new process must know each one the kernel may still
 * send; st_ino values are derived from content and need no state. Nodes travel as tvix proto
 * Nodes and are validated again when read. Versioned: a process refuses a state it does not know.
 */
record MountState(long nextNodeId, long nextHandle, List<HeldNode> nodes, List<OpenHandle> openFiles,
                  List<Long> rootListings) {
    private static final int MAGIC = 0x43465331; // "CFS1"
    /** The name a content-keyed node travels under (a proto Node needs one; only directories use theirs). */
    private static final Name UNNAMED = Name.of("_");

    /**
     * One node id: {@code placedIn} is the node id of the directory it was looked up in for a
     * directory (node ids of directories are per place), 0 for files and symlinks (per content).
     */
    record HeldNode(long id, long parentIno, long lookups, int opens, boolean listedBare, long placedIn, Name name,
                    Node node) {
    }

    record OpenHandle(long handle, long nodeId) {
    }

    byte[] encode() {
        var bytes = new ByteArrayOutputStream();
        try (var out = new DataOutputStream(bytes)) {
            out.writeInt(MAGIC);
            out.writeLong(nextNodeId);
            out.writeLong(nextHandle);
            out.writeInt(nodes.size());
            for (HeldNode n : nodes) {
                out.writeLong(n.id);
                out.writeLong(n.parentIno);
                out.writeLong(n.lookups);
                out.writeInt(n.opens);
                out.writeBoolean(n.listedBare);
                out.writeLong(n.placedIn);
                byte[] proto = n.node.toNodeProto(n.placedIn != 0 ? n.name : UNNAMED).toByteArray();
                out.writeInt(proto.length);
                out.write(proto);
            }
            out.writeInt(openFiles.size());
            for (OpenHandle h : openFiles) {
                out.writeLong(h.handle);
                out.writeLong(h.nodeId);
            }
            out.writeInt(rootListings.size());
            for (long handle : rootListings) {
                out.writeLong(handle);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e); // a byte array does not fail
        }
        return bytes.toByteArray();
    }

    static MountState decode(byte[] state) throws IOException {
        try (var in = new DataInputStream(new ByteArrayInputStream(state))) {
            if (in.readInt() != MAGIC) {
                throw new IOException("the mount state is of another castore version");
            }
            long nextNodeId = in.readLong();
            long nextHandle = in.readLong();
            int count = count(in);
            List<HeldNode> nodes = new ArrayList<>(count);
            for (int i = 0; i < count; i++) {
                long id = in.readLong();
                long parentIno = in.readLong();
                long lookups = in.readLong();
                int opens = in.readInt();
                boolean listedBare = in.readBoolean();
                long placedIn = in.readLong();
                byte[] proto = new byte[count(in)];
                in.readFully(proto);
                Node.NamedNode named;
                try {
                    named = Node.fromProto(castore.proto.Node.parseFrom(proto));
                } catch (InvalidDataException | com.google.protobuf.InvalidProtocolBufferException e) {
                    throw new IOException("the mount state holds an invalid node: " + e.getMessage());
                }
                nodes.add(new HeldNode(id, parentIno, lookups, opens, listedBare, placedIn, named.name(), named.node()));
            }
            count = count(in);
            List<OpenHandle> open = new ArrayList<>(count);
            for (int i = 0; i < count; i++) {
                open.add(new OpenHandle(in.readLong(), in.readLong()));
            }
            count = count(in);
            List<Long> listings = new ArrayList<>(count);
            for (int i = 0; i < count; i++) {
                listings.add(in.readLong());
            }
            if (in.read() != -1) {
                throw new IOException("the mount state has bytes past its end");
            }
            return new MountState(nextNodeId, nextHandle, nodes, open, listings);
        } catch (java.io.EOFException e) {
            throw new IOException("the mount state is cut short");
        }
    }

    private static int count(DataInputStream in) throws IOException {
        int n = in.readInt();
        if (n < 0) {
            throw new IOException("the mount state is damaged (a negative count)");
        }
        return n;
    }
}
