package io.modelmon.functions;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonFactory;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonParser;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonToken;
import org.apache.flink.table.api.DataTypes;
import org.apache.flink.table.catalog.DataTypeFactory;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.functions.ScalarFunction;
import org.apache.flink.table.types.DataType;
import org.apache.flink.table.types.inference.ArgumentCount;
import org.apache.flink.table.types.inference.CallContext;
import org.apache.flink.table.types.inference.ConstantArgumentCount;
import org.apache.flink.table.types.inference.InputTypeStrategy;
import org.apache.flink.table.types.inference.Signature;
import org.apache.flink.table.types.inference.TypeInference;
import org.apache.flink.table.types.logical.LogicalTypeFamily;

/**
 * {@code JSON_FIELDS(payload, 'a', 'b', ...)}: the named top-level fields of a JSON object, each as text, from one
 * pass of a streaming parser; a {@code ROW<a STRING, b STRING, ...>}, or NULL when the payload is not one JSON object.
 *
 * <p>A field's text is what {@code JSON_VALUE(payload, '$.a')} gives: a string's value, a boolean's literal, a
 * number as Java prints it ({@code -0} is {@code 0}, {@code 1E2} is {@code 100.0}, {@code 1e400} is
 * {@code Infinity}), NULL for null, an object, an array or a missing field; of a repeated field the last. It replaces one {@code JSON_VALUE} per field and {@code IS JSON OBJECT},
 * each of which parses the whole record again.
 */
public final class JsonFields extends ScalarFunction {

    private static final JsonFactory JSON = new JsonFactory();

    // Each call's field names (its literals) with their positions in the row. One instance serves every call of
    // the function in a generated operator, each with names of its own.
    private transient List<Layout> layouts;

    public RowData eval(StringData payload, StringData... names) {
        if (payload == null) {
            return null;
        }
        Map<String, Integer> positions = positions(names);
        GenericRowData row = new GenericRowData(names.length);
        try (JsonParser parser = JSON.createParser(payload.toBytes())) {
            if (parser.nextToken() != JsonToken.START_OBJECT) {
                return null;
            }
            for (JsonToken token = parser.nextToken(); token != JsonToken.END_OBJECT; token = parser.nextToken()) {
                // A FIELD_NAME, then its value.
                Integer position = positions.get(parser.currentName());
                JsonToken value = parser.nextToken();
                if (position == null) {
                    parser.skipChildren();
                } else {
                    row.setField(position, text(parser, value));
                }
            }
            // Nothing but whitespace may follow the object.
            return parser.nextToken() == null ? row : null;
        } catch (IOException malformed) {
            return null;
        }
    }

    private Map<String, Integer> positions(StringData[] names) {
        if (layouts == null) {
            layouts = new ArrayList<>();
        }
        for (Layout layout : layouts) {
            if (Arrays.equals(layout.names, names)) {
                return layout.positions;
            }
        }
        Layout layout = new Layout(names);
        layouts.add(layout);
        return layout.positions;
    }

    private static final class Layout {
        final StringData[] names;
        final Map<String, Integer> positions = new HashMap<>();

        Layout(StringData[] names) {
            this.names = names.clone();
            for (int i = 0; i < names.length; i++) {
                positions.put(names[i].toString(), i);
            }
        }
    }

    private static StringData text(JsonParser parser, JsonToken value) throws IOException {
        switch (value) {
            case VALUE_STRING:
            case VALUE_TRUE:
            case VALUE_FALSE:
                return StringData.fromString(parser.getText());
            case VALUE_NUMBER_FLOAT:
                return StringData.fromString(Double.toString(parser.getDoubleValue()));
            case VALUE_NUMBER_INT:
                return StringData.fromString(parser.getNumberType() == JsonParser.NumberType.BIG_INTEGER
                        ? parser.getBigIntegerValue().toString()
                        : Long.toString(parser.getLongValue()));
            default:
                parser.skipChildren();
                return null;
        }
    }

    @Override
    public TypeInference getTypeInference(DataTypeFactory typeFactory) {
        return TypeInference.newBuilder()
                .inputTypeStrategy(new TextArguments())
                .outputTypeStrategy(JsonFields::rowType)
                .build();
    }

    private static Optional<DataType> rowType(CallContext call) {
        int count = call.getArgumentDataTypes().size();
        DataTypes.Field[] fields = new DataTypes.Field[count - 1];
        for (int i = 1; i < count; i++) {
            String name = call.getArgumentValue(i, String.class).orElseThrow(
                    () -> call.newValidationError("JSON_FIELDS takes its field names as string literals"));
            fields[i - 1] = DataTypes.FIELD(name, DataTypes.STRING());
        }
        return Optional.of(DataTypes.ROW(fields).bridgedTo(RowData.class));
    }

    /** A payload and at least one field name, all text: passed to eval as StringData, without a conversion. */
    private static final class TextArguments implements InputTypeStrategy {
        @Override
        public ArgumentCount getArgumentCount() {
            return ConstantArgumentCount.from(2);
        }

        @Override
        public Optional<List<DataType>> inferInputTypes(CallContext call, boolean throwOnFailure) {
            List<DataType> given = call.getArgumentDataTypes();
            DataType[] types = new DataType[given.size()];
            for (int i = 0; i < types.length; i++) {
                boolean text = given.get(i).getLogicalType().is(LogicalTypeFamily.CHARACTER_STRING);
                if (!text || (i > 0 && !call.isArgumentLiteral(i))) {
                    if (throwOnFailure) {
                        throw call.newValidationError(
                                "JSON_FIELDS(payload STRING, name STRING literal, ...): argument %d", i + 1);
                    }
                    return Optional.empty();
                }
                types[i] = DataTypes.STRING().bridgedTo(StringData.class);
            }
            return Optional.of(List.of(types));
        }

        @Override
        public List<Signature> getExpectedSignatures(org.apache.flink.table.functions.FunctionDefinition definition) {
            return List.of(Signature.of(
                    Signature.Argument.of("payload", "STRING"),
                    Signature.Argument.of("name", "STRING"),
                    Signature.Argument.of("...")));
        }
    }
}
