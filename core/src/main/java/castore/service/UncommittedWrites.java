package castore.service;

import java.io.IOException;
import java.util.OptionalLong;

/**
 * A backend whose writes become durable, and visible to other processes, only when committed
 * (the local store publishes its packs so). Putting a root commits; a long-running writer that
 * puts no roots (the daemon, serving tvix clients) commits through this with an
 * {@link IdleCommitter}. A backend that has it puts an object implementing this interface into
 * {@link Store#resources()}.
 */
public interface UncommittedWrites {
    /** {@link System#nanoTime()} of the oldest write not yet committed; empty if every write is. */
    OptionalLong uncommittedSince();

    /** {@link System#nanoTime()} of the latest write (meaningful only while one is uncommitted). */
    long lastWrite();

    /** Makes every write so far durable and visible to other processes. */
    void commit() throws IOException;
}
