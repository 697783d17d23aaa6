package castore.fuse.api;

/** Receives directory entries for one READDIR/READDIRPLUS reply buffer. */
public interface DirectorySink {

    /**
     * Adds an entry for READDIR. {@code nextOffset} is the cookie to resume after this entry
     * (non-zero). Returns false, adding nothing, when the reply buffer is full.
     */
    boolean add(long ino, byte[] name, int direntType, long nextOffset);

    /**
     * Adds an entry with its lookup result for READDIRPLUS. Returns false, adding nothing, when
     * the buffer is full; when it returns true the entry counts as one lookup of its node id,
     * provided the reply goes out: a readdir that then throws is answered with the error alone,
     * the kernel never sees the entries added, and no FORGET will come for them, so the
     * filesystem must undo their lookups before it throws.
     */
    boolean addPlus(Entry entry, byte[] name, long nextOffset);
}
