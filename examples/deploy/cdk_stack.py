"""AWS CDK (Python): the afterglow layer and a function traced without code changes.

Build the layer first: afterglow layer build --python 3.12 --arch x86_64 --output afterglow-layer.zip
"""

from aws_cdk import Stack
from aws_cdk import aws_lambda as lambda_
from constructs import Construct


class OrdersStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        afterglow = lambda_.LayerVersion(
            self,
            "Afterglow",
            code=lambda_.Code.from_asset("afterglow-layer.zip"),
            compatible_runtimes=[lambda_.Runtime.PYTHON_3_12],
            compatible_architectures=[lambda_.Architecture.X86_64],
        )
        lambda_.Function(
            self,
            "Orders",
            runtime=lambda_.Runtime.PYTHON_3_12,
            architecture=lambda_.Architecture.X86_64,
            handler="app.handler",
            code=lambda_.Code.from_asset("src"),
            layers=[afterglow],
            environment={
                "AWS_LAMBDA_EXEC_WRAPPER": "/opt/afterglow-instrument",
                "OTEL_EXPORTER_OTLP_ENDPOINT": "https://otlp.example.com:4318",
            },
        )
