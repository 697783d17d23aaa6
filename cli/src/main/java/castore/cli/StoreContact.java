package castore.cli;

import castore.model.B3Digest;
import castore.model.Name;
import castore.service.Store;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * One cheap question to each service of a store a mount has just opened, asked while the mount
 * comes up: a root name, a Directory and a blob that nothing stores. A remote store's connection
 * is made and its request paths are loaded then rather than on the first access: the first
 * {@code stat} of a root over gRPC took 127-146 ms without this, 16-29 ms with it, and the ready
 * line comes as much later (docs/performance.md, "Session 12"). A store that does not answer is reported, never fatal: the
 * mount serves what it can and recovers when the store is back, as it would later.
 */
final class StoreContact {
    /** A digest nothing stores (all zeros: no known content hashes to it): asking for it fetches nothing. */
    private static final B3Digest NOTHING = B3Digest.wrap(new byte[B3Digest.LENGTH]);
    private static final Name NO_ROOT = Name.of("castore-mount-contact");

    private final List<CompletableFuture<Void>> answers;

    private StoreContact(List<CompletableFuture<Void>> answers) {
        this.answers = answers;
    }

    /** Asks the three questions at once, on virtual threads. */
    static StoreContact start(Store store) {
        var executor = Executors.newVirtualThreadPerTaskExecutor();
        List<CompletableFuture<Void>> answers = new ArrayList<>();
        answers.add(CompletableFuture.runAsync(() -> unchecked(() -> store.roots().get(NO_ROOT)), executor));
        answers.add(CompletableFuture.runAsync(() -> unchecked(() -> store.directories().get(NOTHING)), executor));
        answers.add(CompletableFuture.runAsync(() -> unchecked(() -> store.blobs().has(NOTHING)), executor));
        executor.shutdown(); // its threads end with their questions
        return new StoreContact(answers);
    }

    /**
     * Waits at most {@code patience} for the answers: empty if every service answered, else what
     * went wrong first (the questions still running go on in the background).
     */
    Optional<String> await(Duration patience) throws InterruptedException {
        long deadline = System.nanoTime() + patience.toNanos();
        for (CompletableFuture<Void> answer : answers) {
            try {
                answer.get(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
            } catch (TimeoutException e) {
                return Optional.of("no answer within " + patience.toMillis() + " ms");
            } catch (ExecutionException e) {
                Throwable cause = e.getCause() instanceof Failed f ? f.getCause() : e.getCause();
                return Optional.of(cause.getMessage() != null ? cause.getMessage() : cause.toString());
            }
        }
        return Optional.empty();
    }

    private interface Question {
        Object ask() throws Exception;
    }

    private static void unchecked(Question question) {
        try {
            question.ask();
        } catch (Exception e) {
            throw new Failed(e);
        }
    }

    private static final class Failed extends RuntimeException {
        Failed(Exception cause) {
            super(cause);
        }
    }
}
