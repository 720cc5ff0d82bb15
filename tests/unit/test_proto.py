"""The wire contracts: the committed generated code is current, messages survive the wire, and
the enum numbers and the inference service's RPCs are what other processes rely on.

Enum numbers and field sets are compared exactly: changing one is a contract change, and this
test is where it has to be made on purpose.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import shutil
import sys
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path
from types import ModuleType

import grpc
import pytest
from google.protobuf.message import Message

from smarttrader.v1 import (
    common_pb2,
    inference_pb2,
    inference_pb2_grpc,
    market_data_pb2,
    orders_pb2,
    signals_pb2,
)

REPO = Path(__file__).resolve().parents[2]
PROTO_ROOT = REPO / "proto"
SOURCES = ("common", "inference", "market_data", "orders", "signals")
GENERATED = sorted(
    f"smarttrader/v1/{name}{suffix}"
    for name in SOURCES
    for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")
)
TS = 1_704_189_600_123_456_789  # 2024-01-02 10:00:00.123456789 UTC, needs all 64 bits' range


@pytest.fixture(scope="module")
def gen_proto() -> Iterator[ModuleType]:
    """scripts/gen_proto.py, loaded from its path (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("gen_proto", REPO / "scripts" / "gen_proto.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


# --- generated code is current -----------------------------------------------------------------


def test_committed_generated_code_matches_a_fresh_generation(
    gen_proto: ModuleType, tmp_path: Path
) -> None:
    fresh = gen_proto.generate(PROTO_ROOT, tmp_path)
    assert fresh == GENERATED
    assert gen_proto.generated_files(PROTO_ROOT) == GENERATED, "stray or missing generated files"
    stale = [
        rel for rel in fresh if (tmp_path / rel).read_bytes() != (PROTO_ROOT / rel).read_bytes()
    ]
    assert not stale, f"generated code is stale, run `make proto`: {stale}"


def test_check_names_stale_and_orphaned_files_and_write_repairs_them(
    gen_proto: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "proto"
    shutil.copytree(
        PROTO_ROOT / "smarttrader",
        root / "smarttrader",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    assert gen_proto.main(["--check", "--proto-root", str(root)]) == 0

    signals = root / "smarttrader" / "v1" / "signals.proto"
    source = signals.read_text()
    edited = source.replace("int64 horizon_ns = 8;", "int64 horizon_ns = 8;\n  string note = 9;")
    assert edited != source
    signals.write_text(edited)
    orphan = root / "smarttrader" / "v1" / "retired_pb2.py"
    orphan.write_text("# generated from a .proto that was deleted\n")
    capsys.readouterr()

    assert gen_proto.main(["--check", "--proto-root", str(root)]) == 1
    report = capsys.readouterr().err
    assert "signals_pb2.py (differs)" in report
    assert "signals_pb2.pyi (differs)" in report
    assert "retired_pb2.py (orphan)" in report
    assert "orders_pb2" not in report
    assert orphan.exists(), "--check must change nothing"

    assert gen_proto.main(["--proto-root", str(root)]) == 0
    assert not orphan.exists()
    assert b"note" in (root / "smarttrader" / "v1" / "signals_pb2.py").read_bytes()
    assert gen_proto.main(["--check", "--proto-root", str(root)]) == 0


def test_check_reports_a_proto_that_does_not_compile(
    gen_proto: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "smarttrader" / "v1" / "broken.proto"
    broken.parent.mkdir(parents=True)
    broken.write_text('syntax = "proto3";\npackage smarttrader.v1;\nmessage X { nope y = 1; }\n')
    assert gen_proto.main(["--check", "--proto-root", str(tmp_path)]) == 2
    assert '"nope" is not defined' in capsys.readouterr().err


# --- messages survive the wire -----------------------------------------------------------------


def _trade() -> Message:
    return market_data_pb2.Trade(
        ts_ns=TS,
        symbol="THYAO",
        price=287.75,
        size=1_500,
        seq=42,
        aggressor=common_pb2.SIDE_SELL,
        condition=market_data_pb2.TRADE_CONDITION_CONTINUOUS,
    )


def _quote() -> Message:
    return market_data_pb2.Quote(
        ts_ns=TS,
        symbol="GARAN",
        bid_price=102.4,
        bid_size=9_000,
        ask_price=102.5,
        ask_size=3_100,
        seq=7,
    )


def _bar() -> Message:
    return market_data_pb2.Bar(
        ts_ns=TS,
        ts_end_ns=TS + 60_000_000_000,
        symbol="ASELS",
        open=61.05,
        high=61.4,
        low=60.95,
        close=61.3,
        volume=250_000,
        vwap=61.2173,
        trade_count=318,
    )


def _order() -> Message:
    return orders_pb2.Order(
        client_order_id="s1-20240102-000017",
        symbol="THYAO",
        side=common_pb2.SIDE_BUY,
        quantity=2_000,
        order_type=orders_pb2.ORDER_TYPE_LIMIT,
        limit_price_units=2_877_500,
        time_in_force=orders_pb2.TIME_IN_FORCE_DAY,
        strategy_id="meta-xgb-1",
        ts_ns=TS,
    )


def _execution_report() -> Message:
    return orders_pb2.ExecutionReport(
        exec_id="E-91",
        client_order_id="s1-20240102-000017",
        venue_order_id="V-5521",
        symbol="THYAO",
        side=common_pb2.SIDE_BUY,
        status=orders_pb2.ORDER_STATUS_REJECTED,
        last_quantity=500,
        last_price_units=2_877_500,
        cum_quantity=1_500,
        cum_notional_units=4_316_000_000,
        avg_price=287.7333,
        leaves_quantity=500,
        fees_units=12_948,
        reject_code=orders_pb2.REJECT_CODE_OUTSIDE_BAND,
        reject_reason="price above the daily upper limit 316.50",
        ts_ns=TS,
    )


def _risk_reject() -> Message:
    return orders_pb2.RiskReject(
        client_order_id="s1-20240102-000018",
        symbol="GARAN",
        strategy_id="meta-xgb-1",
        code=orders_pb2.REJECT_CODE_NOTIONAL,
        message="notional 1,250,000.00 TRY above limit 1,000,000.00 TRY",
        ts_ns=TS,
    )


def _signal() -> Message:
    return signals_pb2.Signal(
        symbol="ASELS",
        ts_ns=TS,
        model_name="triple-barrier-xgb",
        model_version="3",
        direction=signals_pb2.DIRECTION_SHORT,
        score=-0.41,
        probability=0.63,
        horizon_ns=3_600_000_000_000,
    )


def _model() -> Message:
    return inference_pb2.ModelRef(
        name="triple-barrier-xgb", version="3", stage=inference_pb2.MODEL_STAGE_PRODUCTION
    )


def _features() -> Message:
    return inference_pb2.FeatureVector(
        symbol="THYAO", ts_ns=TS, features={"ret_5m": -0.0031, "vol_1h": 0.012}
    )


def _prediction() -> Message:
    return inference_pb2.Prediction(
        symbol="THYAO",
        ts_ns=TS,
        score=0.55,
        class_probabilities={"-1": 0.2, "0": 0.25, "1": 0.55},
    )


def _predict_request() -> Message:
    return inference_pb2.PredictRequest(model=_model(), instance=_features())


def _predict_response() -> Message:
    return inference_pb2.PredictResponse(model=_model(), prediction=_prediction())


def _predict_batch_request() -> Message:
    return inference_pb2.PredictBatchRequest(model=_model(), instances=[_features(), _features()])


def _predict_batch_response() -> Message:
    return inference_pb2.PredictBatchResponse(model=_model(), predictions=[_prediction()])


def _explain_request() -> Message:
    return inference_pb2.ExplainRequest(model=_model(), instance=_features(), class_label="1")


def _explain_response() -> Message:
    return inference_pb2.ExplainResponse(
        model=_model(),
        prediction=_prediction(),
        class_label="1",
        base_value=-0.1,
        raw_output=0.2,
        contributions=[
            inference_pb2.FeatureContribution(feature="ret_5m", value=-0.0031, contribution=0.25),
            inference_pb2.FeatureContribution(feature="vol_1h", value=0.012, contribution=0.05),
        ],
    )


def _list_models_request() -> Message:
    return inference_pb2.ListModelsRequest(
        name="triple-barrier-xgb", stage=inference_pb2.MODEL_STAGE_STAGING
    )


def _list_models_response() -> Message:
    return inference_pb2.ListModelsResponse(
        models=[
            inference_pb2.ModelInfo(
                name="triple-barrier-xgb",
                version="3",
                stage=inference_pb2.MODEL_STAGE_PRODUCTION,
                features=["ret_5m", "vol_1h"],
                class_labels=["-1", "0", "1"],
                created_ts_ns=TS,
            )
        ]
    )


MESSAGES: list[Callable[[], Message]] = [
    _trade,
    _quote,
    _bar,
    _order,
    _execution_report,
    _risk_reject,
    _signal,
    _model,
    _features,
    _prediction,
    _predict_request,
    _predict_response,
    _predict_batch_request,
    _predict_batch_response,
    _explain_request,
    _explain_response,
    _list_models_request,
    _list_models_response,
]


@pytest.mark.parametrize("build", MESSAGES, ids=lambda f: f.__name__.lstrip("_"))
def test_message_round_trips_with_every_field_set(build: Callable[[], Message]) -> None:
    message = build()
    set_fields = {field.name for field, _ in message.ListFields()}
    assert set_fields == set(message.DESCRIPTOR.fields_by_name), "set every field in the example"
    parsed = type(message).FromString(message.SerializeToString())
    assert parsed == message


def test_nan_feature_value_marks_a_missing_value_and_survives_the_wire() -> None:
    vector = inference_pb2.FeatureVector(features={"vol_1h": float("nan"), "ret_5m": 0.5})
    parsed = inference_pb2.FeatureVector.FromString(vector.SerializeToString())
    assert math.isnan(parsed.features["vol_1h"])
    assert parsed.features["ret_5m"] == 0.5


def test_timestamps_and_money_cross_the_wire_exactly() -> None:
    """ts_ns needs more than a double's 53 bits: a float field would round it."""
    order = orders_pb2.Order.FromString(_order().SerializeToString())
    assert order.ts_ns == TS
    assert order.limit_price_units == 2_877_500  # 287.75 TRY in 1/10,000 TRY
    report = orders_pb2.ExecutionReport.FromString(_execution_report().SerializeToString())
    assert report.cum_notional_units == 4_316_000_000
    assert report.fees_units == 12_948


def test_missing_limit_price_is_distinguishable_from_zero() -> None:
    market = orders_pb2.Order(order_type=orders_pb2.ORDER_TYPE_MARKET, quantity=100)
    zero = orders_pb2.Order(order_type=orders_pb2.ORDER_TYPE_LIMIT, limit_price_units=0)
    assert not orders_pb2.Order.FromString(market.SerializeToString()).HasField("limit_price_units")
    assert orders_pb2.Order.FromString(zero.SerializeToString()).HasField("limit_price_units")
    no_probability = signals_pb2.Signal(score=0.3)
    assert not signals_pb2.Signal.FromString(no_probability.SerializeToString()).HasField(
        "probability"
    )


def test_every_contract_lives_in_the_versioned_package() -> None:
    for module in (common_pb2, inference_pb2, market_data_pb2, orders_pb2, signals_pb2):
        assert module.DESCRIPTOR.package == "smarttrader.v1"


# --- enum numbers are the contract -------------------------------------------------------------

ENUMS = {
    common_pb2.Side: {"SIDE_UNSPECIFIED": 0, "SIDE_BUY": 1, "SIDE_SELL": 2},
    market_data_pb2.TradeCondition: {
        "TRADE_CONDITION_UNSPECIFIED": 0,
        "TRADE_CONDITION_CONTINUOUS": 1,
        "TRADE_CONDITION_OPENING_AUCTION": 2,
        "TRADE_CONDITION_CLOSING_AUCTION": 3,
        "TRADE_CONDITION_TRADES_AT_CLOSE": 4,
        "TRADE_CONDITION_HALT_AUCTION": 5,
    },
    orders_pb2.OrderType: {
        "ORDER_TYPE_UNSPECIFIED": 0,
        "ORDER_TYPE_MARKET": 1,
        "ORDER_TYPE_LIMIT": 2,
        "ORDER_TYPE_MARKET_TO_LIMIT": 3,
    },
    orders_pb2.TimeInForce: {
        "TIME_IN_FORCE_UNSPECIFIED": 0,
        "TIME_IN_FORCE_DAY": 1,
        "TIME_IN_FORCE_IOC": 2,
        "TIME_IN_FORCE_FOK": 3,
    },
    orders_pb2.OrderStatus: {
        "ORDER_STATUS_UNSPECIFIED": 0,
        "ORDER_STATUS_NEW": 1,
        "ORDER_STATUS_ACCEPTED": 2,
        "ORDER_STATUS_PARTIALLY_FILLED": 3,
        "ORDER_STATUS_FILLED": 4,
        "ORDER_STATUS_CANCELLED": 5,
        "ORDER_STATUS_REJECTED": 6,
        "ORDER_STATUS_EXPIRED": 7,
    },
    orders_pb2.RejectCode: {
        "REJECT_CODE_UNSPECIFIED": 0,
        "REJECT_CODE_INVALID_ORDER": 1,
        "REJECT_CODE_DUPLICATE_ORDER_ID": 2,
        "REJECT_CODE_UNKNOWN_SYMBOL": 3,
        "REJECT_CODE_ORDER_SIZE": 4,
        "REJECT_CODE_NOTIONAL": 5,
        "REJECT_CODE_PRICE_COLLAR": 6,
        "REJECT_CODE_OFF_TICK": 7,
        "REJECT_CODE_OUTSIDE_BAND": 8,
        "REJECT_CODE_POSITION_LIMIT": 9,
        "REJECT_CODE_EXPOSURE": 10,
        "REJECT_CODE_THROTTLE": 11,
        "REJECT_CODE_ORDER_TO_TRADE_RATIO": 12,
        "REJECT_CODE_FAT_FINGER": 13,
        "REJECT_CODE_TRADING_HALTED": 14,
        "REJECT_CODE_KILL_SWITCH": 15,
        "REJECT_CODE_OUTSIDE_SESSION": 16,
        "REJECT_CODE_DRAWDOWN": 17,
        "REJECT_CODE_INSUFFICIENT_FUNDS": 18,
        "REJECT_CODE_SHORT_SALE": 19,
        "REJECT_CODE_VENUE": 20,
    },
    signals_pb2.Direction: {
        "DIRECTION_UNSPECIFIED": 0,
        "DIRECTION_LONG": 1,
        "DIRECTION_SHORT": 2,
        "DIRECTION_FLAT": 3,
    },
    inference_pb2.ModelStage: {
        "MODEL_STAGE_UNSPECIFIED": 0,
        "MODEL_STAGE_STAGING": 1,
        "MODEL_STAGE_PRODUCTION": 2,
        "MODEL_STAGE_ARCHIVED": 3,
    },
}


@pytest.mark.parametrize("enum", list(ENUMS), ids=lambda e: e.DESCRIPTOR.name)
def test_enum_numbers_are_fixed(enum) -> None:
    assert dict(enum.items()) == ENUMS[enum]


def test_market_data_enums_cover_the_lake_vocabulary() -> None:
    """Every TradeCondition the lake stores has a wire value, so the feed never has to drop one."""
    from quant.data.schema import TradeCondition

    names = market_data_pb2.TradeCondition.DESCRIPTOR.values_by_name
    wire = {name.removeprefix("TRADE_CONDITION_") for name in names}
    assert {c.name for c in TradeCondition} <= wire


# --- the inference service ---------------------------------------------------------------------


def test_inference_service_has_the_four_unary_rpcs() -> None:
    service = inference_pb2.DESCRIPTOR.services_by_name["InferenceService"]
    assert service.full_name == "smarttrader.v1.InferenceService"
    methods = {
        m.name: (m.input_type.name, m.output_type.name, m.client_streaming, m.server_streaming)
        for m in service.methods
    }
    assert methods == {
        "Predict": ("PredictRequest", "PredictResponse", False, False),
        "PredictBatch": ("PredictBatchRequest", "PredictBatchResponse", False, False),
        "Explain": ("ExplainRequest", "ExplainResponse", False, False),
        "ListModels": ("ListModelsRequest", "ListModelsResponse", False, False),
    }


def test_grpc_module_is_the_committed_file() -> None:
    module = importlib.import_module("smarttrader.v1.inference_pb2_grpc")
    assert Path(module.__file__).resolve() == PROTO_ROOT / "smarttrader/v1/inference_pb2_grpc.py"
    for rpc in ("Predict", "PredictBatch", "Explain", "ListModels"):
        assert callable(getattr(module.InferenceServiceServicer, rpc))


class _Servicer(inference_pb2_grpc.InferenceServiceServicer):
    """Answers from the request, so the test sees the request arrive intact."""

    def Predict(self, request, context):
        score = sum(request.instance.features.values())
        return inference_pb2.PredictResponse(
            model=request.model,
            prediction=inference_pb2.Prediction(
                symbol=request.instance.symbol, ts_ns=request.instance.ts_ns, score=score
            ),
        )

    def ListModels(self, request, context):
        return _list_models_response()


def test_generated_stub_and_servicer_talk_over_a_real_channel() -> None:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    inference_pb2_grpc.add_InferenceServiceServicer_to_server(_Servicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = inference_pb2_grpc.InferenceServiceStub(channel)
            request = inference_pb2.PredictRequest(
                model=_model(),
                instance=inference_pb2.FeatureVector(
                    symbol="THYAO", ts_ns=TS, features={"a": 0.25, "b": 0.5}
                ),
            )
            response = stub.Predict(request, timeout=10)
            assert response.model == _model()
            assert (response.prediction.symbol, response.prediction.ts_ns) == ("THYAO", TS)
            assert response.prediction.score == 0.75
            assert stub.ListModels(inference_pb2.ListModelsRequest(), timeout=10) == (
                _list_models_response()
            )
            with pytest.raises(grpc.RpcError) as error:
                stub.Explain(inference_pb2.ExplainRequest(), timeout=10)
            assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        server.stop(grace=None).wait()
