package castore.grpc.server;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** Large Read messages share a few arrays; small ones get their own; the spares stay few. */
class MessageArraysTest {
    @Test
    void largeMessagesShareArraysAndTheSparesStayFew() {
        while (MessageArrays.kept() > 0) {
            MessageArrays.borrow(MessageArrays.SHARED_FROM); // empty the spares other tests left
        }
        byte[] first = MessageArrays.borrow(300_000);
        assertThat(first).hasSize(BlobServiceImpl.MAX_DATA_MESSAGE);
        MessageArrays.giveBack(first);
        assertThat(MessageArrays.borrow(BlobServiceImpl.MAX_DATA_MESSAGE)).as("the spare is used again").isSameAs(first);

        List<byte[]> many = new ArrayList<>();
        for (int i = 0; i < 20; i++) {
            many.add(MessageArrays.borrow(MessageArrays.SHARED_FROM));
        }
        Set<byte[]> distinct = Collections.newSetFromMap(new IdentityHashMap<>());
        distinct.addAll(many);
        assertThat(distinct).as("arrays lent at once are distinct").hasSize(many.size());
        many.forEach(MessageArrays::giveBack);
        assertThat(MessageArrays.kept()).as("spares kept at most").isEqualTo(8);
    }

    @Test
    void smallMessagesGetArraysOfTheirOwnSize() {
        byte[] small = MessageArrays.borrow(4096);
        assertThat(small).hasSize(4096);
        int before = MessageArrays.kept();
        MessageArrays.giveBack(small);
        MessageArrays.giveBack(null);
        assertThat(MessageArrays.kept()).isEqualTo(before);
    }
}
